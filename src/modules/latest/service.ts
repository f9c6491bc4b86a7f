// The last-value store: the newest value of every sensor variable, kept in the transaction that stores
// readings (one upsert per sensor variable per batch, only when newer), repaired after an edit, and read
// for GET /latest and the WebSocket snapshot (never a scan of readings).
import { and, asc, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Database, type Tx } from '../../db'
import { measurement } from '../../db/measurements'
import { bulkInsert } from '../../db/bulk'
import { rawRunRows } from '../../db/prepared'
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

const upsert = (tx: Tx, values: readonly Record<string, unknown>[], onlyNewer: boolean) =>
  tx
    .insert(latestValues)
    .values(values as LatestRow[])
    .onConflictDoUpdate({
      target: [latestValues.sensor_id, latestValues.variable],
      set: {
        value: excluded('value'),
        timestamp: excluded('timestamp'),
        reading_id: excluded('reading_id'),
        entry: excluded('entry'),
      },
      setWhere: onlyNewer ? newer : undefined,
    })

const COLUMNS = ['sensor_id', 'variable', 'value', 'timestamp', 'reading_id', 'entry'] as const

async function write(tx: Tx, rows: LatestRow[], onlyNewer: boolean) {
  if (rows.length === 0) return
  if (isSqlite(tx))
    rawRunRows(tx, `latest-upsert:${onlyNewer}`, COLUMNS, (placeholders) =>
      upsert(tx, placeholders, onlyNewer),
    )(rows)
  else
    await bulkInsert(
      tx,
      latestValues,
      rows,
      `on conflict (sensor_id, variable) do update set value = excluded.value, timestamp = excluded.timestamp, reading_id = excluded.reading_id, entry = excluded.entry${onlyNewer ? ` where excluded.timestamp > latest_values.timestamp or (excluded.timestamp = latest_values.timestamp and excluded.reading_id > latest_values.reading_id)` : ''}`,
    )
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
 * The row's entry of GET /latest's `values` as JSON text, written with the row: formatting 50,000
 * numbers and timestamps on every read of a 10,000-sensor fleet cost more than reading them.
 */
const withEntry = (row: LatestRow): LatestRow => {
  row.entry = `${quoted(row.variable)}:{"value":${row.value},"timestamp":"${iso(row.timestamp)}"}`
  return row
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
        entry: '',
      })
    }
  }
  const rows: LatestRow[] = []
  for (const bySensor of newest.values())
    for (const row of bySensor.values()) rows.push(withEntry(row))
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
      rows.push(
        withEntry({
          sensor_id: sensorId,
          variable,
          value: Number(row.value),
          timestamp: row.timestamp,
          reading_id: row.id,
          entry: '',
        }),
      )
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

/**
 * The selected sensors (by id) and, by sensor, their entries joined by commas: the store's entries are
 * written as JSON text (withEntry), so the database joins them and nothing is formatted here. One
 * grouped scan of the store in key order costs half of a lookup per sensor on a large fleet.
 */
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
  const joined = isSqlite(db)
    ? sql<string>`group_concat(${latestValues.entry}, ',')`
    : sql<string>`string_agg(${latestValues.entry}, ',' order by ${latestValues.variable})`
  const entries = db
    .select({ sensor_id: latestValues.sensor_id, entries: joined })
    .from(latestValues)
    .where(
      filter.sensorIds
        ? inArray(latestValues.sensor_id, [...filter.sensorIds])
        : where
          ? inArray(
              latestValues.sensor_id,
              db.select({ id: sensors.id }).from(sensors).where(where),
            )
          : undefined,
    )
    .groupBy(latestValues.sensor_id)
  // SQLite hands the rows over as arrays, skipping drizzle's per-row objects.
  if (isSqlite(db)) {
    const values = <T>(query: unknown) =>
      (query as { values(): Promise<unknown[][]> }).values() as Promise<T[]>
    return {
      list: await values<SensorRow>(list),
      entries: new Map(await values<[number, string]>(entries)),
    }
  }
  return {
    list: (await list).map((r): SensorRow => [r.id, r.status, r.last_seen]),
    entries: new Map((await entries).map((r) => [r.sensor_id, r.entries])),
  }
}

/**
 * The selected sensors' entries (SensorLatest, by id) as one JSON array text: objects for the whole fleet,
 * stringified and checked against the route's schema, cost ten times the read on 10,000 sensors.
 */
export async function latestJson(db: Tx, filter: Filter): Promise<string> {
  const { list, entries } = await latestRows(db, filter)
  const parts: string[] = []
  for (const [id, status, lastSeen] of list)
    parts.push(
      `{"sensor_id":${id},"status":"${status}","last_seen":${lastSeen === null ? 'null' : `"${iso(Number(lastSeen))}"`},"values":{${entries.get(id) ?? ''}}}`,
    )
  return `[${parts.join(',')}]`
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
