// The last-value store: the newest value of every sensor variable, kept in the transaction that stores
// readings (one upsert per sensor variable per batch, only when newer), repaired after an edit, and read
// for GET /latest and the WebSocket snapshot (never a scan of readings).
import { and, asc, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Database, type Tx } from '../../db'
import { measurement } from '../../db/measurements'
import { prepared } from '../../db/prepared'
import { eventMeta, latestValues, readings, sensors } from '../../db/schema'
import { NotFoundError } from '../../lib/errors'
import { iso } from '../../lib/time'
import type { SnapshotCoverage } from '../../realtime/channels'
import { isVariableName } from '../readings/values'
import type { LatestQuery } from './model'

type LatestRow = typeof latestValues.$inferSelect

/** A stored reading as the store needs it: `t` is its timestamp in ms. */
export interface StoredValues {
  id: number
  sensor_id: number
  values: Record<string, number>
  t: number
}

const excluded = (column: string) => sql.raw(`excluded.${column}`)

/** Newer wins: a later timestamp, or the same one from a later reading. */
const newer = sql`${excluded('timestamp')} > ${latestValues.timestamp} or (${excluded('timestamp')} = ${latestValues.timestamp} and ${excluded('reading_id')} > ${latestValues.reading_id})`

const upsert = (
  tx: Tx,
  values: LatestRow[] | Record<keyof LatestRow, unknown>,
  onlyNewer: boolean,
) =>
  tx
    .insert(latestValues)
    .values(values as LatestRow[])
    .onConflictDoUpdate({
      target: [latestValues.sensor_id, latestValues.variable],
      set: {
        value: excluded('value'),
        timestamp: excluded('timestamp'),
        reading_id: excluded('reading_id'),
      },
      setWhere: onlyNewer ? newer : undefined,
    })

const placeholders = {
  sensor_id: sql.placeholder('sensor_id'),
  variable: sql.placeholder('variable'),
  value: sql.placeholder('value'),
  timestamp: sql.placeholder('timestamp'),
  reading_id: sql.placeholder('reading_id'),
}

async function write(tx: Tx, rows: LatestRow[], onlyNewer: boolean) {
  if (rows.length === 0) return
  if (isSqlite(tx)) {
    const statement = prepared(tx, `latest-upsert:${onlyNewer}`, () =>
      upsert(tx, placeholders, onlyNewer).prepare(),
    )
    for (const row of rows) await statement.run(row)
  } else
    for (let i = 0; i < rows.length; i += 500) await upsert(tx, rows.slice(i, i + 500), onlyNewer)
}

/** Folds a batch of stored readings into the store: the batch's newest per sensor variable, if newer. */
export async function updateLatest(tx: Tx, stored: readonly StoredValues[]) {
  const newest = new Map<number, Map<string, LatestRow>>()
  for (const reading of stored) {
    let bySensor = newest.get(reading.sensor_id)
    if (!bySensor) newest.set(reading.sensor_id, (bySensor = new Map()))
    for (const variable in reading.values) {
      const current = bySensor.get(variable)
      if (
        current &&
        (current.timestamp > reading.t ||
          (current.timestamp === reading.t && current.reading_id > reading.id))
      )
        continue
      bySensor.set(variable, {
        sensor_id: reading.sensor_id,
        variable,
        value: reading.values[variable]!,
        timestamp: reading.t,
        reading_id: reading.id,
      })
    }
  }
  const rows: LatestRow[] = []
  for (const bySensor of newest.values()) for (const row of bySensor.values()) rows.push(row)
  await write(tx, rows, true)
}

/**
 * Recomputes these sensor variables from the readings (after a reading was corrected, moved or
 * deleted, its old value may have been the newest): the newest reading that measures each, or no entry.
 */
export async function refreshLatest(tx: Tx, pairs: Iterable<[sensorId: number, variable: string]>) {
  const rows: LatestRow[] = []
  for (const [sensorId, variable] of pairs) {
    const value = measurement(tx, variable)
    const [row] = await tx
      .select({ id: readings.id, timestamp: readings.timestamp, value })
      .from(readings)
      .where(and(eq(readings.sensor_id, sensorId), isNotNull(value)))
      .orderBy(desc(readings.timestamp), desc(readings.id))
      .limit(1)
    if (row)
      rows.push({
        sensor_id: sensorId,
        variable,
        value: Number(row.value),
        timestamp: row.timestamp,
        reading_id: row.id,
      })
    else
      await tx
        .delete(latestValues)
        .where(and(eq(latestValues.sensor_id, sensorId), eq(latestValues.variable, variable)))
  }
  await write(tx, rows, false)
}

interface Filter {
  sensorIds?: readonly number[]
  location_id?: number
  tipo?: string
}

type SensorRow = [id: number, status: string, lastSeen: number | null]
type ValueRow = [sensorId: number, variable: string, value: number, timestamp: number]

/** The sensors the filter selects (by id) and their store rows (by sensor, then variable). */
async function latestRows(db: Tx, filter: Filter) {
  const where = and(
    filter.location_id !== undefined ? eq(sensors.location_id, filter.location_id) : undefined,
    filter.tipo !== undefined ? eq(sensors.tipo, filter.tipo) : undefined,
    filter.sensorIds ? inArray(sensors.id, [...filter.sensorIds]) : undefined,
  )
  const list = db
    .select({ id: sensors.id, status: sensors.status, last_seen: sensors.last_seen })
    .from(sensors)
    .where(where)
    .orderBy(asc(sensors.id))
  const columns = {
    sensor_id: latestValues.sensor_id,
    variable: latestValues.variable,
    value: latestValues.value,
    timestamp: latestValues.timestamp,
  }
  const order = [asc(latestValues.sensor_id), asc(latestValues.variable)]
  const values = where
    ? db
        .select(columns)
        .from(latestValues)
        .innerJoin(sensors, eq(sensors.id, latestValues.sensor_id))
        .where(where)
        .orderBy(...order)
    : db
        .select(columns)
        .from(latestValues)
        .orderBy(...order)
  // 10,000 sensors are tens of thousands of rows: SQLite hands them over as arrays, skipping drizzle's
  // per-row objects (five times the cost of reading them).
  if (isSqlite(db))
    return {
      list: (await (list as unknown as { values(): Promise<unknown[][]> }).values()) as SensorRow[],
      rows: (await (
        values as unknown as { values(): Promise<unknown[][]> }
      ).values()) as ValueRow[],
    }
  return {
    list: (await list).map((r): SensorRow => [r.id, r.status, r.last_seen]),
    rows: (await values).map((r): ValueRow => [r.sensor_id, r.variable, r.value, r.timestamp]),
  }
}

/** A name as a JSON string: names are checked at ingest, so escaping is only a safeguard. */
const quotedNames = new Map<string, string>()
const quoted = (name: string) => {
  let text = quotedNames.get(name)
  if (text === undefined) {
    text = isVariableName(name) ? `"${name}"` : JSON.stringify(name)
    if (quotedNames.size < 10_000) quotedNames.set(name, text)
  }
  return text
}

/**
 * The selected sensors' entries (SensorLatest, by id) as one JSON array text, written straight from
 * the rows: building objects for the whole fleet and having them stringified and checked against the
 * route's schema cost ten times the reading (GET /latest for 10,000 sensors). The text goes into one
 * flat list of pieces joined once; strings grown piece by piece per sensor cost more to join than to build.
 */
export async function latestJson(db: Tx, filter: Filter): Promise<string> {
  const { list, rows } = await latestRows(db, filter)
  const parts: string[] = ['[']
  let j = 0
  for (const [id, status, lastSeen] of list) {
    while (j < rows.length && rows[j]![0] < id) j++
    const seen = lastSeen === null ? 'null' : `"${iso(Number(lastSeen))}"`
    parts.push(
      parts.length === 1 ? '' : ',',
      `{"sensor_id":${id},"status":"${status}","last_seen":${seen},"values":{`,
    )
    for (let first = true; j < rows.length && rows[j]![0] === id; j++, first = false) {
      const [, variable, value, timestamp] = rows[j]!
      parts.push(
        first ? '' : ',',
        quoted(variable),
        ':{"value":',
        String(Number(value)),
        ',"timestamp":"',
        iso(Number(timestamp)),
        '"}',
      )
    }
    parts.push('}}')
  }
  parts.push(']')
  return parts.join('')
}

const json = (text: string) =>
  new Response(text, { headers: { 'content-type': 'application/json; charset=utf-8' } })

/** GET /api/v1/latest: every selected sensor, as a JSON response (see latestJson). */
export const listLatest = async ({ db }: Services, query: LatestQuery) =>
  json(await latestJson(db.read, query))

export async function sensorLatest({ db }: Services, id: number) {
  const found = await latestJson(db.read, { sensorIds: [id] })
  if (found === '[]') throw new NotFoundError('Sensor', id)
  return json(found.slice(1, -1))
}

/**
 * The latest values of the sensors a WebSocket's channels cover (as a JSON array text) and the seq of
 * the last event they include: read in one consistent view of the database, so the stream can go on
 * from exactly that seq.
 */
export async function readSnapshot(db: Database, coverage: SnapshotCoverage) {
  return db.snapshot(async (tx) => {
    const [meta] = await tx
      .select({ seq: eventMeta.last_seq })
      .from(eventMeta)
      .where(eq(eventMeta.id, 1))
    const seq = meta?.seq ?? 0
    if (coverage !== 'all' && coverage.length === 0) return { seq, data: '[]' }
    return { seq, data: await latestJson(tx, coverage === 'all' ? {} : { sensorIds: coverage }) }
  })
}
