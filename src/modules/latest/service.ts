// The last-value store: one row per sensor holding the newest value of each of its variables, kept in the
// transaction that stores readings (read, merged "newer wins" per variable, written once per sensor per
// batch), repaired after an edit, and read for GET /latest and the WebSocket snapshot (never a scan of
// readings). A row per sensor, not per sensor variable: a single POST's five upserts were the largest
// statement of PostgreSQL's single POSTs (BENCHMARKS.md, session 26).
import { and, asc, desc, eq, inArray, isNotNull, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Database, type Tx } from '../../db'
import { measurement } from '../../db/measurements'
import { bulkInsert } from '../../db/bulk'
import { rawRunRows, selectByIds } from '../../db/prepared'
import { eventMeta, latestValues, readings, sensors } from '../../db/schema'
import { NotFoundError } from '../../lib/errors'
import { iso } from '../../lib/time'
import type { SnapshotCoverage } from '../../realtime/channels'
import { isVariableName } from '../readings/values'
import type { LatestQuery } from './model'

/** A stored reading as the store needs it: `t` is its timestamp in ms. */
export interface StoredValues {
  id: number
  sensor_id: number
  values: Record<string, number>
  t: number
}

/** A variable's newest value: [value, timestamp in ms, reading id] (the row's `newest` JSON, by name). */
type Newest = [value: number, t: number, readingId: number]
type SensorNewest = Record<string, Newest>

/** The stored rows of these sensors, parsed, by sensor id. */
export type CurrentLatest = Promise<Map<number, SensorNewest>>

/** A variable's entry; `constructor` or `valueof` are valid names, so never an inherited property. */
const own = (newest: SensorNewest, variable: string) =>
  Object.hasOwn(newest, variable) ? newest[variable] : undefined

/** Newer wins: a later timestamp, or the same one from a later reading. */
const isNewer = (a: Newest, b: Newest) => a[1] > b[1] || (a[1] === b[1] && a[2] > b[2])

/**
 * Reads the stored newest values of these sensors. Started with a transaction's first statements (on
 * PostgreSQL it travels in their round trip); the transaction holds these sensors, so nothing changes
 * them before it writes.
 */
export function readLatest(tx: Tx, sensorIds: readonly number[]): CurrentLatest {
  return selectByIds(tx, 'latest-newest', sensorIds, (match) =>
    tx
      .select({ sensor_id: latestValues.sensor_id, newest: latestValues.newest })
      .from(latestValues)
      .where(match(latestValues.sensor_id)),
  ).then(
    (rows) => new Map(rows.map((r) => [Number(r.sensor_id), JSON.parse(r.newest) as SensorNewest])),
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
 * A sensor's row: its newest values as JSON, and its entries of GET /latest's `values` as JSON text in
 * name order, written with the row: formatting 50,000 numbers and timestamps on every read of a
 * 10,000-sensor fleet cost more than reading them.
 */
function rowOf(sensorId: number, newest: SensorNewest) {
  const names = Object.keys(newest)
  // A stored row's names are in order already (its JSON was written sorted); only a new one moves them.
  let sorted = newest
  if (!inOrder(names)) {
    names.sort()
    sorted = {}
    for (const name of names) sorted[name] = newest[name]!
  }
  let entries = ''
  for (const name of names) {
    const [value, t] = sorted[name]!
    if (entries !== '') entries += ','
    entries += `${quoted(name)}:{"value":${value},"timestamp":"${iso(t)}"}`
  }
  return { sensor_id: sensorId, newest: JSON.stringify(sorted), entries }
}

function inOrder(names: string[]) {
  for (let i = 1; i < names.length; i++) if (names[i - 1]! > names[i]!) return false
  return true
}

type LatestRow = ReturnType<typeof rowOf>
const COLUMNS = ['sensor_id', 'newest', 'entries'] as const

async function write(tx: Tx, rows: LatestRow[]) {
  if (rows.length === 0) return
  if (isSqlite(tx))
    rawRunRows(tx, 'latest-upsert', COLUMNS, (placeholders) =>
      tx
        .insert(latestValues)
        .values(placeholders as never)
        .onConflictDoUpdate({
          target: latestValues.sensor_id,
          set: { newest: sql.raw('excluded.newest'), entries: sql.raw('excluded.entries') },
        }),
    )(rows)
  else
    await bulkInsert(
      tx,
      latestValues,
      rows,
      'on conflict (sensor_id) do update set newest = excluded.newest, entries = excluded.entries',
    )
}

/**
 * Folds a batch of stored readings into the store: each sensor variable's newest, if newer than the
 * stored one. `current` is the sensors' stored rows when the caller read them ahead (readLatest).
 */
export async function updateLatest(
  tx: Tx,
  stored: readonly StoredValues[],
  current?: CurrentLatest,
) {
  const stores = await (current ?? readLatest(tx, [...new Set(stored.map((r) => r.sensor_id))]))
  const changed = new Map<number, SensorNewest>()
  for (const reading of stored) {
    let merged = stores.get(reading.sensor_id)
    if (!merged) stores.set(reading.sensor_id, (merged = {}))
    for (const variable in reading.values) {
      const candidate: Newest = [reading.values[variable]!, reading.t, reading.id]
      const held = own(merged, variable)
      if (held && !isNewer(candidate, held)) continue
      merged[variable] = candidate
      changed.set(reading.sensor_id, merged)
    }
  }
  const rows = [...changed].map(([sensorId, merged]) => rowOf(sensorId, merged))
  await write(tx, rows)
}

/**
 * Recomputes these sensor variables from the readings (after a reading was corrected, moved or
 * deleted, its old value may have been the newest): the newest reading that measures each, or no entry.
 */
export async function refreshLatest(tx: Tx, pairs: Iterable<[sensorId: number, variable: string]>) {
  const bySensor = new Map<number, string[]>()
  for (const [sensorId, variable] of pairs) {
    let variables = bySensor.get(sensorId)
    if (!variables) bySensor.set(sensorId, (variables = []))
    variables.push(variable)
  }
  const stores = await readLatest(tx, [...bySensor.keys()])
  const rows: LatestRow[] = []
  for (const [sensorId, variables] of bySensor) {
    const merged = stores.get(sensorId) ?? {}
    for (const variable of variables) {
      const value = measurement(tx, variable)
      const [row] = await tx
        .select({ id: readings.id, timestamp: readings.timestamp, value })
        .from(readings)
        .where(and(eq(readings.sensor_id, sensorId), isNotNull(value)))
        .orderBy(desc(readings.timestamp), desc(readings.id))
        .limit(1)
      if (row) merged[variable] = [Number(row.value), row.timestamp, row.id]
      else delete merged[variable]
    }
    if (Object.keys(merged).length > 0) rows.push(rowOf(sensorId, merged))
    else await tx.delete(latestValues).where(eq(latestValues.sensor_id, sensorId))
  }
  await write(tx, rows)
}

/** The variables each of these sensors has a newest value of, in name order, by sensor id. */
export async function latestVariables(db: Tx, sensorIds: readonly number[]) {
  const stores = await readLatest(db, sensorIds)
  return new Map([...stores].map(([id, newest]) => [id, Object.keys(newest).sort()]))
}

/** The timestamp (ms) of a sensor variable's newest value, if the store has one. */
export async function latestTime(db: Tx, sensorId: number, variable: string) {
  const newest = (await readLatest(db, [sensorId])).get(sensorId)
  return newest && own(newest, variable)?.[1]
}

interface Filter {
  sensorIds?: readonly number[]
  location_id?: number
  tipo?: string
}

type SensorRow = [id: number, status: string, lastSeen: number | null]

/**
 * The selected sensors (by id) and, by sensor, their entries: written as JSON text with the row (rowOf),
 * so nothing is formatted here. One scan of the store in key order costs half of a lookup per sensor on
 * a large fleet.
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
  const entries = db
    .select({ sensor_id: latestValues.sensor_id, entries: latestValues.entries })
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
