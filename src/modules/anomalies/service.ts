// Anomaly use cases: record, list, change and remove anomalies; a new one is announced as anomaly_detected.
import { and, desc, eq, gte, lte } from 'drizzle-orm'
import type { Services } from '../../context'
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
    variable: row.variable as Anomaly['variable'],
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

/** Records an anomaly by hand (detected ones come from the detector); emits anomaly_detected. */
export const createAnomaly = ({ emitter }: Services, input: AnomalyCreate) =>
  emitter.transact(async (tx, emit) => {
    await checkSensors(tx, [input.sensor_id])
    const now = Date.now()
    const status = input.status ?? 'open'
    return insertOne(
      tx,
      emit,
      anomalyResource,
      {
        ...input,
        severity: input.severity ?? 'warning',
        status,
        rule: input.rule ?? 'manual',
        first_seen: now,
        last_seen: now,
        resolved_at: status === 'resolved' ? now : null,
        acknowledged_at: status === 'acknowledged' ? now : null,
        created_at: now,
        updated_at: now,
      },
      'anomaly_detected',
    )
  })

const lifecycle = (status: string | undefined, now: number) =>
  status === undefined
    ? {}
    : {
        resolved_at: status === 'resolved' ? now : null,
        acknowledged_at: status === 'acknowledged' ? now : null,
      }

export const replaceAnomaly = ({ emitter }: Services, id: number, input: AnomalyCreate) =>
  emitter.transact(async (tx, emit) => {
    await checkSensors(tx, [input.sensor_id])
    const now = Date.now()
    return updateOne(tx, emit, anomalyResource, id, {
      expected_min: null,
      expected_max: null,
      message: null,
      ...input,
      severity: input.severity ?? 'warning',
      status: input.status ?? 'open',
      ...lifecycle(input.status ?? 'open', now),
      updated_at: now,
    })
  })

export const patchAnomaly = ({ emitter }: Services, id: number, patch: AnomalyPatch) =>
  emitter.transact(async (tx, emit) => {
    if (patch.sensor_id !== undefined) await checkSensors(tx, [patch.sensor_id])
    const now = Date.now()
    return updateOne(tx, emit, anomalyResource, id, {
      ...defined(patch),
      ...lifecycle(patch.status, now),
      updated_at: now,
    })
  })

export const deleteAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => deleteOne(tx, emit, anomalyResource, id))

/** open → acknowledged (someone is on it); a resolved anomaly cannot be acknowledged. */
export const acknowledgeAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact(async (tx, emit) => {
    const row = await findRow(tx, anomalyResource, id)
    if (row.status === 'resolved')
      throw new ConflictError(
        `Anomaly ${id} is already resolved; if the problem is back, the detector opens a new one.`,
        { status: row.status },
      )
    if (row.status === 'acknowledged') return anomalyResource.toDto(row)
    const now = Date.now()
    return updateOne(tx, emit, anomalyResource, id, {
      status: 'acknowledged',
      acknowledged_at: now,
      updated_at: now,
    })
  })

/** open or acknowledged → resolved; resolving a resolved anomaly changes nothing. */
export const resolveAnomaly = ({ emitter }: Services, id: number) =>
  emitter.transact(async (tx, emit) => {
    const row = await findRow(tx, anomalyResource, id)
    if (row.status === 'resolved') return anomalyResource.toDto(row)
    const now = Date.now()
    return updateOne(tx, emit, anomalyResource, id, {
      status: 'resolved',
      resolved_at: now,
      updated_at: now,
    })
  })
