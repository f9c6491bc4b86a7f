// Reading use cases: single and batch ingest (one transaction, all or none), queries by sensor and time.
import { and, asc, desc, eq, gte, lte } from 'drizzle-orm'
import type { Services } from '../../context'
import type { Tx } from '../../db'
import { readings } from '../../db/schema'
import {
  defined,
  deleteOne,
  findOne,
  findPage,
  findRow,
  insertMany,
  updateOne,
  type Resource,
} from '../../lib/crud'
import { InvalidFieldError } from '../../lib/errors'
import { GroupCommit } from '../../lib/group-commit'
import { instant, iso, readingInstant } from '../../lib/time'
import { detectAnomalies } from '../anomalies/detection'
import { checkSensors } from '../sensors/service'
import type {
  Reading,
  ReadingBatch,
  ReadingCreate,
  ReadingPatch,
  ReadingQuery,
  ReadingReplace,
} from './model'

type Row = typeof readings.$inferSelect

export const readingResource: Resource<Row, Reading> = {
  table: readings,
  label: 'Reading',
  entityType: 'reading',
  toDto: (row) => ({
    id: row.id,
    sensor_id: row.sensor_id,
    temperatura: row.temperatura,
    humedad: row.humedad,
    timestamp: iso(row.timestamp),
    created_at: iso(row.created_at),
  }),
}

/** Checks one body and turns it into a row; `at` prefixes field names inside a batch. */
function toRow(input: ReadingCreate, now: number, at = '') {
  const temperatura = input.temperatura ?? null
  const humedad = input.humedad ?? null
  if (temperatura === null && humedad === null)
    throw new InvalidFieldError(
      `${at}temperatura`,
      `${at ? `Item ${at.slice(0, -1)}` : 'A reading'} needs temperatura, humedad or both.`,
    )
  return {
    sensor_id: input.sensor_id,
    temperatura,
    humedad,
    timestamp:
      input.timestamp === undefined ? now : readingInstant(input.timestamp, `${at}timestamp`),
    created_at: now,
  }
}

const checkReadingSensors = (tx: Tx, rows: { sensor_id: number }[], at: (i: number) => string) =>
  checkSensors(
    tx,
    rows.map((r) => r.sensor_id),
    (i) => `${at(i)}sensor_id`,
    'create it with POST /api/v1/sensors before sending its readings.',
  )

export const listReadings = ({ db }: Services, q: ReadingQuery) => {
  const order = q.order === 'asc' ? asc : desc
  return findPage(
    db.read,
    readingResource,
    and(
      q.sensor_id ? eq(readings.sensor_id, q.sensor_id) : undefined,
      q.from ? gte(readings.timestamp, instant(q.from, 'from')) : undefined,
      q.to ? lte(readings.timestamp, instant(q.to, 'to')) : undefined,
    ),
    [order(readings.timestamp), order(readings.id)],
    q.limit,
    q.offset,
  )
}

export const getReading = ({ db }: Services, id: number) => findOne(db.read, readingResource, id)

/**
 * Stores readings in one transaction: every one is checked first, then all are written, or none; the
 * anomaly detector runs on them in that same transaction.
 */
export async function createReadings(services: Services, inputs: ReadingBatch, batch: boolean) {
  const now = Date.now()
  const at = (i: number) => (batch ? `[${i}].` : '')
  const rows = inputs.map((input, i) => toRow(input, now, at(i)))
  return services.emitter.transact(async (tx, emit) => {
    await checkReadingSensors(tx, rows, at)
    const stored = await insertMany(tx, emit, readingResource, rows)
    await detectAnomalies(services, tx, emit, stored)
    return stored
  })
}

// Single POSTs that arrive together share one transaction (one commit, one detector pass per sensor).
const groups = new WeakMap<Services, GroupCommit<ReadingCreate, Reading>>()

/** Stores one reading; resolves once it is committed, refuses it alone if it is invalid. */
export function createReading(services: Services, input: ReadingCreate) {
  let group = groups.get(services)
  if (!group)
    groups.set(
      services,
      (group = new GroupCommit((inputs) => createReadings(services, inputs, false))),
    )
  return group.add(input)
}

export const replaceReading = (services: Services, id: number, input: ReadingReplace) =>
  patchReading(services, id, { temperatura: null, humedad: null, ...input })

export const patchReading = ({ emitter }: Services, id: number, patch: ReadingPatch) =>
  emitter.transact(async (tx, emit) => {
    const current = await findRow(tx, readingResource, id)
    const merged = { ...current, ...defined(patch) }
    const row = toRow(
      {
        sensor_id: merged.sensor_id,
        temperatura: merged.temperatura,
        humedad: merged.humedad,
        timestamp: patch.timestamp,
      },
      current.timestamp,
    )
    if (patch.sensor_id !== undefined) await checkReadingSensors(tx, [row], () => '')
    const { created_at: _, ...changes } = row
    return updateOne(tx, emit, readingResource, id, changes)
  })

export const deleteReading = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => deleteOne(tx, emit, readingResource, id))
