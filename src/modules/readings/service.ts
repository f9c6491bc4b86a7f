// Reading use cases: single and batch ingest (one transaction, all or none), queries by sensor and time.
import { and, asc, desc, eq, gte, lte } from 'drizzle-orm'
import type { Services } from '../../context'
import { later, type Tx } from '../../db'
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
import { UnknownReferenceError } from '../../lib/errors'
import { GroupCommit } from '../../lib/group-commit'
import { instant, iso, readingInstant } from '../../lib/time'
import { repairRollups } from '../history/rollups'
import { detectAnomalies, readDetectionInputs } from '../anomalies/detection'
import { readLatest, refreshLatest, updateLatest, type StoredValues } from '../latest/service'
import { markSeen, sensorStatuses } from '../liveness/service'
import { checkSensors } from '../sensors/service'
import { registerVariables, rememberVariables, unregistered } from '../variables/service'
import type {
  Reading,
  ReadingBatch,
  ReadingCreate,
  ReadingPatch,
  ReadingQuery,
  ReadingReplace,
} from './model'
import { materializeReadings } from '../../realtime/reading-frames'
import { readingDto } from './dto'
import { inJsonbOrder, measurementsOf, patchMeasurements, type Values } from './values'

type Row = typeof readings.$inferSelect

export const readingResource: Resource<Row, Reading> = {
  table: readings,
  label: 'Reading',
  entityType: 'reading',
  toDto: readingDto,
}

/** Checks one body and turns it into a row; `at` prefixes field names inside a batch. */
function toRow(input: ReadingCreate, now: number, at = '') {
  return {
    sensor_id: input.sensor_id,
    values: measurementsOf(input, at),
    timestamp:
      input.timestamp === undefined ? now : readingInstant(input.timestamp, `${at}timestamp`),
    created_at: now,
  }
}

const UNKNOWN_SENSOR_HINT = 'create it with POST /api/v1/sensors before sending its readings.'

const checkReadingSensors = (tx: Tx, rows: { sensor_id: number }[], at: (i: number) => string) =>
  checkSensors(
    tx,
    rows.map((r) => r.sensor_id),
    (i) => `${at(i)}sensor_id`,
    UNKNOWN_SENSOR_HINT,
  )

/** The liveness status of every sensor the rows name; a 422 naming the first unknown one. */
async function readingSensors(tx: Tx, rows: { sensor_id: number }[], at: (i: number) => string) {
  const statuses = await sensorStatuses(
    tx,
    rows.map((r) => r.sensor_id),
  )
  const missing = rows.findIndex((r) => !statuses.has(r.sensor_id))
  if (missing >= 0)
    throw new UnknownReferenceError(
      `${at(missing)}sensor_id`,
      'Sensor',
      rows[missing]!.sensor_id,
      UNKNOWN_SENSOR_HINT,
    )
  return statuses
}

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
 * Stores readings in one transaction: every one is checked first, then all are written, or none. In
 * that same transaction, their sensors are marked seen (online again if they were not), names not
 * seen before are registered as variables, the last-value store takes the newest values, and the
 * anomaly detector checks every measurement.
 */
export async function createReadings(services: Services, inputs: ReadingBatch, batch: boolean) {
  const now = Date.now()
  const at = (i: number) => (batch ? `[${i}].` : '')
  const rows = inputs.map((input, i) => toRow(input, now, at(i)))
  // Measurements in the order PostgreSQL reads them back, so the event log can rebuild the frame.
  if (services.db.dialect === 'postgres')
    for (const row of rows) row.values = inJsonbOrder(row.values)
  const names = new Set<string>()
  for (const row of rows) for (const name in row.values) names.add(name)
  const fresh = unregistered(services, names)
  const stored = await services.emitter.transact(
    async (tx, emit) => {
      // On PostgreSQL the sensors, what detection reads and the readings themselves go in one round
      // trip (postgres.js pipelines a transaction's queries). The sensor check is waited for first, so
      // an unknown sensor is refused as such, not as the foreign key the insert then breaks.
      const checking = readingSensors(tx, rows, at)
      const sensorIds = [...new Set(rows.map((r) => r.sensor_id))]
      const inputs = readDetectionInputs(services, tx, sensorIds)
      const latest = readLatest(tx, sensorIds)
      latest.catch(() => undefined)
      const inserting = insertMany(tx, emit, readingResource, rows)
      inserting.catch(() => undefined)
      const statuses = await checking
      await registerVariables(tx, fresh, now)
      const stored = await inserting
      // After the readings' events: a client that waits for the next event after a POST gets the reading.
      const checked = stored.map((reading, i): StoredValues => ({
        ...reading,
        t: rows[i]!.timestamp,
      }))
      // markSeen emits only for a sensor back online: then its events come before detection's.
      const seen = Promise.all([
        markSeen(tx, emit, statuses, now),
        updateLatest(tx, checked, latest),
      ])
      if ([...statuses.values()].every((status) => status === 'online')) later(tx, seen)
      else await seen
      await detectAnomalies(services, tx, emit, checked, inputs)
      return stored
    },
    { keys: rows.map((r) => r.sensor_id) },
  )
  rememberVariables(services, fresh)
  return stored
}

// Single POSTs that arrive together share one transaction (one commit, one detector pass per sensor).
// PostgreSQL: two groups written side by side. In process, 64 in flight over 100 sensors: four lanes
// (groups of about 16) cost 140-170 µs of this process's CPU and 210-290 µs of PostgreSQL's per
// reading, two (about 32) 115-130 and 145-165, one (64) stopped at one transaction's round trips.
const SENSOR_LANES = 2
const groups = new WeakMap<Services, GroupCommit<ReadingCreate, Reading>>()

/** Stores one reading; resolves once it is committed, refuses it alone if it is invalid. */
export function createReading(services: Services, input: ReadingCreate) {
  let group = groups.get(services)
  if (!group)
    groups.set(
      services,
      (group = new GroupCommit(
        (inputs) => createReadings(services, inputs, false),
        500,
        // PostgreSQL writes readings of different sensors side by side (see WriteScope).
        services.db.dialect === 'postgres' ? SENSOR_LANES : 1,
        (input) => input.sensor_id,
      )),
    )
  return group.add(input)
}

/** Every (sensor, variable) whose newest value a change of these readings may have moved. */
function touched(...readings: { sensor_id: number; values: Values }[]) {
  const pairs = new Map<string, [number, string]>()
  for (const { sensor_id, values } of readings)
    for (const variable in values) pairs.set(`${sensor_id}:${variable}`, [sensor_id, variable])
  return pairs.values()
}

/**
 * Writes a corrected reading (sensor, time and measurements as `measure` makes them from the stored
 * ones), registers a name it brings, and repairs the last-value store for the old and the new values.
 */
async function correct(
  services: Services,
  id: number,
  patch: { sensor_id?: number; timestamp?: string },
  measure: (current: Values) => Values,
) {
  let fresh: string[] = []
  const dto = await services.emitter.transact(async (tx, emit) => {
    const current = await findRow(tx, readingResource, id)
    const row = {
      sensor_id: patch.sensor_id ?? current.sensor_id,
      values: measure(current.values),
      timestamp:
        patch.timestamp === undefined
          ? current.timestamp
          : readingInstant(patch.timestamp, 'timestamp'),
    }
    if (patch.sensor_id !== undefined) await checkReadingSensors(tx, [row], () => '')
    // A name new to the deployment is registered, as at ingest: GET /variables lists every name in use.
    fresh = unregistered(services, Object.keys(row.values))
    await registerVariables(tx, fresh, Date.now())
    await materializeReadings(tx, eq(readings.id, id))
    const dto = await updateOne(tx, emit, readingResource, id, row)
    await refreshLatest(tx, touched(current, row))
    await repairRollups(tx, [current, { id, ...row }])
    return dto
  })
  rememberVariables(services, fresh)
  return dto
}

/** PUT: the body is the whole reading; measurements left out are gone. */
export const replaceReading = (services: Services, id: number, input: ReadingReplace) =>
  correct(services, id, input, () => measurementsOf(input))

/** PATCH: named measurements are set (null removes one), the others kept. */
export const patchReading = (services: Services, id: number, patch: ReadingPatch) =>
  correct(services, id, defined(patch), (current) => patchMeasurements(current, patch))

export const deleteReading = ({ emitter }: Services, id: number) =>
  emitter.transact(async (tx, emit) => {
    const row = await findRow(tx, readingResource, id)
    await materializeReadings(tx, eq(readings.id, id))
    await deleteOne(tx, emit, readingResource, id)
    await refreshLatest(tx, touched(row))
    await repairRollups(tx, [row])
  })
