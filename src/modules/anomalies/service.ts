// Anomaly use cases: record, list, change and remove anomalies; a new one is announced as anomaly_detected.
import { and, desc, eq, gte, lte } from 'drizzle-orm'
import type { Services } from '../../context'
import type { Tx } from '../../db'
import { anomalies } from '../../db/schema'
import {
  defined,
  deleteOne,
  findOne,
  findPage,
  findRow,
  insertOne,
  updateOne,
  type Resource,
} from '../../lib/crud'
import { ConflictError } from '../../lib/errors'
import { instant, iso } from '../../lib/time'
import type { Emit } from '../../realtime/emitter'
import { checkSensors } from '../sensors/service'
import type { Anomaly, AnomalyCreate, AnomalyPatch, AnomalyQuery } from './model'

type Row = typeof anomalies.$inferSelect

export const anomalyResource: Resource<Row, Anomaly> = {
  table: anomalies,
  label: 'Anomaly',
  entityType: 'anomaly',
  toDto: (row) => ({
    id: row.id,
    sensor_id: row.sensor_id,
    reading_id: row.reading_id,
    variable: row.variable,
    value: row.value,
    severity: row.severity as Anomaly['severity'],
    status: row.status as Anomaly['status'],
    rule: row.rule,
    kind: row.kind,
    expected_min: row.expected_min,
    expected_max: row.expected_max,
    message: row.message,
    count: row.count,
    first_seen: iso(row.first_seen),
    last_seen: iso(row.last_seen),
    resolved_at: row.resolved_at === null ? null : iso(row.resolved_at),
    acknowledged_at: row.acknowledged_at === null ? null : iso(row.acknowledged_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
}

export const listAnomalies = ({ db }: Services, q: AnomalyQuery) => {
  const from = q.from === undefined ? undefined : instant(q.from, 'from')
  const to = q.to === undefined ? undefined : instant(q.to, 'to')
  return findPage(
    db.read,
    anomalyResource,
    and(
      q.sensor_id ? eq(anomalies.sensor_id, q.sensor_id) : undefined,
      q.status ? eq(anomalies.status, q.status) : undefined,
      q.severity ? eq(anomalies.severity, q.severity) : undefined,
      q.variable ? eq(anomalies.variable, q.variable) : undefined,
      q.rule ? eq(anomalies.rule, q.rule) : undefined,
      from !== undefined ? gte(anomalies.last_seen, from) : undefined,
      to !== undefined ? lte(anomalies.first_seen, to) : undefined,
    ),
    [desc(anomalies.last_seen), desc(anomalies.id)],
    q.limit,
    q.offset,
  )
}

export const getAnomaly = ({ db }: Services, id: number) => findOne(db.read, anomalyResource, id)

type Status = Anomaly['status']
type Lifecycle = Pick<Row, 'status' | 'acknowledged_at' | 'resolved_at'>

/**
 * The lifecycle rules, one place for every way a status changes (POST /acknowledge and /resolve, the
 * `status` of PATCH and PUT, a new anomaly, the detector's auto-resolve): acknowledging stamps
 * acknowledged_at and is refused (409) once resolved; resolving stamps resolved_at and keeps
 * acknowledged_at; opening again clears both; the status it already has changes nothing, so no
 * timestamp moves. Returns the columns to set, or undefined when nothing changes.
 */
export function transition(id: number, row: Lifecycle, to: Status, now: number) {
  if (row.status === to) return undefined
  if (to === 'acknowledged') {
    if (row.status === 'resolved')
      throw new ConflictError(
        `Anomaly ${id} is already resolved; if the problem is back, the detector opens a new one.`,
        { status: row.status },
      )
    return { status: to, acknowledged_at: now }
  }
  if (to === 'resolved') return { status: to, resolved_at: now }
  return { status: to, acknowledged_at: null, resolved_at: null }
}

const FRESH: Lifecycle = { status: 'open', acknowledged_at: null, resolved_at: null }

/** Records an anomaly by hand (detected ones come from the detector); emits anomaly_detected. */
export const createAnomaly = ({ emitter }: Services, input: AnomalyCreate) =>
  emitter.transact(async (tx, emit) => {
    await checkSensors(tx, [input.sensor_id])
    const now = Date.now()
    return insertOne(
      tx,
      emit,
      anomalyResource,
      {
        ...input,
        severity: input.severity ?? 'warning',
        // A new anomaly starts open, so no status can conflict (the id is never shown).
        ...FRESH,
        ...transition(0, FRESH, input.status ?? 'open', now),
        rule: input.rule ?? 'manual',
        first_seen: now,
        last_seen: now,
        created_at: now,
        updated_at: now,
      },
      'anomaly_detected',
    )
  })

/**
 * Writes `fields` and moves the status to `to` by the lifecycle rules; when neither changes anything
 * (a status it already has, nothing else) the anomaly is answered as it is and no event goes out.
 */
async function change(
  tx: Tx,
  emit: Emit,
  id: number,
  fields: Record<string, unknown>,
  to: Status | undefined,
) {
  const row = await findRow(tx, anomalyResource, id)
  const now = Date.now()
  const status = to === undefined ? undefined : transition(id, row, to, now)
  if (status === undefined && Object.keys(fields).length === 0) return anomalyResource.toDto(row)
  return updateOne(tx, emit, anomalyResource, id, { ...fields, ...status, updated_at: now })
}

/** PUT: the body is the whole anomaly; optional fields left out are cleared, a status left out is open. */
export const replaceAnomaly = ({ emitter }: Services, id: number, input: AnomalyCreate) =>
  emitter.transact(async (tx, emit) => {
    await checkSensors(tx, [input.sensor_id])
    const { status, ...fields } = input
    const whole = { expected_min: null, expected_max: null, message: null, ...fields }
    return change(
      tx,
      emit,
      id,
      { ...whole, severity: input.severity ?? 'warning' },
      status ?? 'open',
    )
  })

export const patchAnomaly = ({ emitter }: Services, id: number, patch: AnomalyPatch) =>
  emitter.transact(async (tx, emit) => {
    if (patch.sensor_id !== undefined) await checkSensors(tx, [patch.sensor_id])
    const { status, ...fields } = defined(patch)
    return change(tx, emit, id, fields, status)
  })

export const deleteAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => deleteOne(tx, emit, anomalyResource, id))

/** open → acknowledged (someone is on it); a resolved anomaly cannot be acknowledged. */
export const acknowledgeAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => change(tx, emit, id, {}, 'acknowledged'))

/** open or acknowledged → resolved; resolving a resolved anomaly changes nothing. */
export const resolveAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => change(tx, emit, id, {}, 'resolved'))
