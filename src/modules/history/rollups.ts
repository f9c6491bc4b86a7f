// Per-minute and per-hour rollups: a catch-up worker folds readings into them in id order behind a
// persisted watermark (every reading with id <= watermark is in them, none after), and corrections
// recompute the buckets they touch inside their own transaction, so the rollups stay exact.
import { and, eq, gt, gte, inArray, isNotNull, lt, lte, sql } from 'drizzle-orm'
import { isSqlite, sqliteClient, type Database, type Tx } from '../../db'
import { bulkInsert } from '../../db/bulk'
import { measurement } from '../../db/measurements'
import { pgExecute } from '../../db/postgres'
import { prepared, rawRunRows } from '../../db/prepared'
import { historyState, readings, rollupsHour, rollupsMinute } from '../../db/schema'
import { ConflictError } from '../../lib/errors'
import { settledReadingId } from './horizon'
import { iso } from '../../lib/time'

export const MINUTE = 60_000
export const HOUR = 3_600_000
/**
 * Readings folded per transaction. Each pass upserts every bucket its readings touch once, so larger
 * passes write each minute row fewer times (2,000 readings of 1,000 sensors upserted five rows per
 * reading, 10,000 one); a pass of 10,000 holds SQLite's writer for about a tenth of a second.
 */
const BATCH = 10_000

/** What a bucket holds, mergeable: the rollup row's columns without its key. */
export interface Partial {
  count: number
  sum: number
  min: number
  max: number
  first: number
  first_ts: number
  first_id: number
  last: number
  last_ts: number
  last_id: number
}

/** A bucket with nothing in it yet (add() and merge() fill it). */
const empty = (): Partial => ({
  count: 0,
  sum: 0,
  min: Infinity,
  max: -Infinity,
  first: 0,
  first_ts: Infinity,
  first_id: 0,
  last: 0,
  last_ts: -Infinity,
  last_id: 0,
})

/** Adds one value into a bucket (what merge() does with a bucket of one, without making that bucket). */
function add(p: Partial, value: number, ts: number, id: number) {
  p.count += 1
  p.sum += value
  if (value < p.min) p.min = value
  if (value > p.max) p.max = value
  if (ts < p.first_ts || (ts === p.first_ts && id < p.first_id)) {
    p.first = value
    p.first_ts = ts
    p.first_id = id
  }
  if (ts > p.last_ts || (ts === p.last_ts && id > p.last_id)) {
    p.last = value
    p.last_ts = ts
    p.last_id = id
  }
}

/** A bucket holding one value. */
export const single = (value: number, ts: number, id: number): Partial => {
  const p = empty()
  add(p, value, ts, id)
  return p
}

/** Folds b into a (a is changed and returned). First and last go by timestamp, then reading id. */
export function merge(a: Partial, b: Partial): Partial {
  a.count += b.count
  a.sum += b.sum
  if (b.min < a.min) a.min = b.min
  if (b.max > a.max) a.max = b.max
  if (b.first_ts < a.first_ts || (b.first_ts === a.first_ts && b.first_id < a.first_id)) {
    a.first = b.first
    a.first_ts = b.first_ts
    a.first_id = b.first_id
  }
  if (b.last_ts > a.last_ts || (b.last_ts === a.last_ts && b.last_id > a.last_id)) {
    a.last = b.last
    a.last_ts = b.last_ts
    a.last_id = b.last_id
  }
  return a
}

// Both tables have the same columns; typed as the minute one.
export type RollupTable = typeof rollupsMinute
type RollupRow = typeof rollupsMinute.$inferSelect

const excluded = (column: string) => sql.raw(`excluded.${column}`)

/** How a partial row merges into the bucket already stored (what merge() does, in SQL). */
function onConflict(table: RollupTable) {
  const earlier = sql`(${excluded('first_ts')} < ${table.first_ts} or (${excluded('first_ts')} = ${table.first_ts} and ${excluded('first_id')} < ${table.first_id}))`
  const later = sql`(${excluded('last_ts')} > ${table.last_ts} or (${excluded('last_ts')} = ${table.last_ts} and ${excluded('last_id')} > ${table.last_id}))`
  const pick = (cond: typeof earlier, column: keyof RollupRow) =>
    sql`case when ${cond} then ${excluded(column)} else ${table[column]} end`
  return {
    target: [table.sensor_id, table.variable, table.bucket],
    set: {
      count: sql`${table.count} + ${excluded('count')}`,
      sum: sql`${table.sum} + ${excluded('sum')}`,
      min: sql`case when ${excluded('min')} < ${table.min} then ${excluded('min')} else ${table.min} end`,
      max: sql`case when ${excluded('max')} > ${table.max} then ${excluded('max')} else ${table.max} end`,
      first: pick(earlier, 'first'),
      first_ts: pick(earlier, 'first_ts'),
      first_id: pick(earlier, 'first_id'),
      last: pick(later, 'last'),
      last_ts: pick(later, 'last_ts'),
      last_id: pick(later, 'last_id'),
    },
  }
}

const upsert = (tx: Tx, table: RollupTable, values: unknown) =>
  tx
    .insert(table)
    .values(values as RollupRow[])
    .onConflictDoUpdate(onConflict(table))

const COLUMNS = [
  'sensor_id',
  'variable',
  'bucket',
  'count',
  'sum',
  'min',
  'max',
  'first',
  'first_ts',
  'first_id',
  'last',
  'last_ts',
  'last_id',
] as const

/**
 * Adds these partial rows into a rollup table, merging each with what its bucket holds: on SQLite
 * through prepared statements of up to eight rows (rawRunRows), on PostgreSQL in one statement (column
 * lists, bulk.ts).
 */
async function addRows(tx: Tx, table: RollupTable, rows: RollupRow[]) {
  if (!isSqlite(tx)) {
    await bulkInsert(tx, table, rows, mergeClause(table))
    return
  }
  const key = table === rollupsMinute ? 'rollup-minute' : 'rollup-hour'
  rawRunRows(tx, key, COLUMNS, (placeholders) => upsert(tx, table, placeholders))(rows)
}

/** A pass's reading: id, sensor_id, timestamp, values as JSON text. */
type PassRow = [number, number, number, string]

/** SQLite: a pass's readings straight from bun:sqlite. */
const sqlitePass = (tx: Tx) =>
  prepared(tx, 'rollup-pass', () =>
    sqliteClient(tx).prepare<PassRow, [number, number]>(
      'select id, sensor_id, "timestamp", "values" from readings where id > ? order by id limit ?',
    ),
  )

/** The next `batch` readings after the watermark, in id order; on PostgreSQL up to `upTo` only. */
async function passRows(tx: Tx, watermark: number, batch: number, upTo?: number) {
  if (isSqlite(tx)) return sqlitePass(tx).values(watermark, batch) as PassRow[]
  // The pass is a range of the primary key, read in its order: the index scan. Without fresh
  // statistics (a table that grew since its last ANALYZE) PostgreSQL chose a bitmap scan and a sort,
  // three times the time. Sent with the select, in the same round trip.
  const [, rows] = await Promise.all([
    pgExecute(tx, sql`set local enable_bitmapscan = off`),
    pgExecute(
      tx,
      sql`select id, sensor_id, "timestamp", "values"::text as v from readings
          where id > ${watermark} and id <= ${upTo ?? Number.MAX_SAFE_INTEGER} order by id limit ${batch}`,
    ),
  ])
  return rows.map((r): PassRow => [
    Number(r.id),
    Number(r.sensor_id),
    Number(r.timestamp),
    String(r.v),
  ])
}

/** The state row (created on first use). */
export async function historyStateOf(tx: Tx) {
  const [row] = await tx.select().from(historyState).where(eq(historyState.id, 1))
  return row ?? { id: 1, watermark: 0, pruned_before: 0 }
}

async function ensureState(tx: Tx) {
  await tx.insert(historyState).values({ id: 1 }).onConflictDoNothing()
}

/**
 * Folds the next `batch` readings after the watermark (up to `upTo` on PostgreSQL) in this process,
 * then adds the buckets into the tables. PostgreSQL grouped the pass itself before: on the fleet's batch
 * ingest that took twice the database's CPU that reading the pass and upserting its buckets take here.
 */
async function foldNext(tx: Tx, watermark: number, batch: number, upTo?: number) {
  const rows = await passRows(tx, watermark, batch, upTo)
  if (rows.length === 0) return { count: 0, last: watermark }
  const minutes = new Map<string, RollupRow>()
  const hours = new Map<string, RollupRow>()
  // Each sensor variable's current minute and hour rows: a sensor's readings mostly arrive in time
  // order, so most values land in the row the previous one did (no key built, no object made).
  const current = new Map<number, Map<string, { minute: RollupRow; hour: RollupRow }>>()
  const rowFor = (
    into: Map<string, RollupRow>,
    size: number,
    sensor: number,
    name: string,
    ts: number,
  ) => {
    const bucket = Math.floor(ts / size) * size
    const key = `${sensor}|${name}|${bucket}`
    let row = into.get(key)
    if (!row) into.set(key, (row = { sensor_id: sensor, variable: name, bucket, ...empty() }))
    return row
  }
  for (const [id, sensor, ts, text] of rows) {
    const values = JSON.parse(text) as Record<string, number>
    let bySensor = current.get(sensor)
    if (!bySensor) current.set(sensor, (bySensor = new Map()))
    for (const name in values) {
      const v = Number(values[name])
      let at = bySensor.get(name)
      if (!at || ts < at.minute.bucket || ts >= at.minute.bucket + MINUTE) {
        const minute = rowFor(minutes, MINUTE, sensor, name, ts)
        const hour =
          at && ts >= at.hour.bucket && ts < at.hour.bucket + HOUR
            ? at.hour
            : rowFor(hours, HOUR, sensor, name, ts)
        bySensor.set(name, (at = { minute, hour }))
      }
      add(at.minute, v, ts, id)
      add(at.hour, v, ts, id)
    }
  }
  // Sent together: one round trip on PostgreSQL.
  await Promise.all([
    addRows(tx, rollupsMinute, [...minutes.values()]),
    addRows(tx, rollupsHour as unknown as RollupTable, [...hours.values()]),
  ])
  return { count: rows.length, last: rows[rows.length - 1]![0] }
}

/** `on conflict … do update` merging a partial row into the stored bucket, as raw SQL for a statement. */
function mergeClause(table: RollupTable) {
  const { set } = onConflict(table)
  const assignments = Object.entries(set).map(
    ([column, value]) => sql`${sql.identifier(column)} = ${value}`,
  )
  return sql`on conflict (sensor_id, variable, bucket) do update set ${sql.join(assignments, sql`, `)}`
}
/**
 * Folds the next batch of readings after the watermark into the rollups and moves the watermark, in
 * one write transaction (so on several instances each reading is folded once: each pass reads the
 * watermark inside it, under the writer lock on SQLite, under a row lock on PostgreSQL, where it runs
 * beside ingest and folds only readings no writer can still commit below). Answers how many it folded.
 */
export async function catchUpOnce(db: Database, batch = BATCH): Promise<number> {
  return (await foldPass(db, batch)).count
}

/** One catch-up pass: how many readings it folded and how long it held the writer transaction, ms. */
async function foldPass(db: Database, batch: number) {
  let held = 0
  // PostgreSQL: up to the settled id only, beside ingest (see horizon.ts); SQLite has one writer.
  const postgres = db.dialect === 'postgres'
  const upTo = postgres ? await settledReadingId(db) : undefined
  const pass = async (tx: Tx) => {
    const start = performance.now()
    await ensureState(tx)
    const watermark = postgres ? await lockedWatermark(tx) : (await historyStateOf(tx)).watermark
    if (upTo !== undefined && upTo <= watermark) return 0
    const folded = await foldNext(tx, watermark, batch, upTo)
    if (folded.count > 0)
      await tx.update(historyState).set({ watermark: folded.last }).where(eq(historyState.id, 1))
    held = performance.now() - start
    return folded.count
  }
  // The writer lock shared (corrections and retention, which take it alone, wait), the watermark row
  // locked (two instances' workers take turns).
  const count = await (postgres
    ? db.transaction(pass, undefined, { keys: [] })
    : db.transaction(pass))
  return { count, held }
}

/**
 * How long a SQLite pass should hold the writer, which every ingest waits for meanwhile: on a large
 * history whose minute rows each hold one reading, a pass of 10,000 readings took a second. The worker
 * sizes its next pass from the last one's time, between MIN_BATCH and BATCH. PostgreSQL's passes run
 * beside ingest and keep BATCH.
 */
const PASS_TARGET_MS = 150
const MIN_BATCH = 1000
const passSizes = new WeakMap<Database, number>()

function nextSize(size: number, folded: number, held: number) {
  if (folded < size || held <= 0) return size
  const scaled = (size * PASS_TARGET_MS) / held
  // At most halved or doubled per pass, so one slow pass (a checkpoint) does not swing it far.
  return Math.round(Math.min(BATCH, Math.max(MIN_BATCH, size / 2, Math.min(size * 2, scaled))))
}

async function lockedWatermark(tx: Tx) {
  const [row] = await pgExecute(
    tx,
    sql`select watermark from history_state where id = 1 for update`,
  )
  return Number(row!.watermark)
}

/** Whether a reading is past the watermark: read without the writer lock, so an idle pass takes none. */
async function behind(db: Database) {
  const { watermark } = await historyStateOf(db.read)
  const [row] = await db.read
    .select({ id: readings.id })
    .from(readings)
    .where(gt(readings.id, watermark))
    // In id order: PostgreSQL then walks the primary key from the watermark. Unordered, with stale
    // statistics it scanned the table from its start, the whole table when nothing was behind.
    .orderBy(readings.id)
    .limit(1)
  return row !== undefined
}

/**
 * Catches up until no reading is left behind the watermark; yields between passes. Without `batch`,
 * SQLite's passes are sized to hold the writer about PASS_TARGET_MS each.
 */
export async function catchUp(db: Database, batch?: number) {
  const adapts = batch === undefined && db.dialect === 'sqlite'
  let total = 0
  for (;;) {
    // An idle pass takes no write lock: one a second is not free, and on SQLite a write waits for
    // another process's lock on the event loop (busy_timeout).
    if (!(await behind(db))) return total
    const size = batch ?? (adapts ? passSizes.get(db) : undefined) ?? BATCH
    const { count, held } = await foldPass(db, size)
    if (adapts) passSizes.set(db, nextSize(size, count, held))
    total += count
    if (count < size) return total
    await Bun.sleep(0)
  }
}

/** A reading as a correction saw it, before or after: which buckets it counts in. */
export interface Touched {
  id: number
  sensor_id: number
  timestamp: number
  values: Record<string, number>
}

/**
 * Recomputes every minute and hour bucket these readings (old and new versions) count in, from the
 * raw readings the rollups cover (id <= watermark). Runs inside the correction's transaction, after it.
 * Refuses (409) a correction in a range whose raw readings retention already deleted.
 */
export async function repairRollups(tx: Tx, touched: Touched[]) {
  const { watermark, pruned_before } = await historyStateOf(tx)
  for (const t of touched)
    if (t.timestamp < pruned_before)
      throw new ConflictError(
        `Reading ${t.id} is (or would be) at ${iso(t.timestamp)}, before ${iso(pruned_before)}, where READINGS_RETENTION has deleted raw readings and only rollups remain: it can no longer be corrected.`,
        { reading_id: t.id },
      )
  const minuteKeys = new Map<string, [number, string, number]>()
  for (const t of touched) {
    if (t.id > watermark) continue
    for (const name in t.values) {
      const bucket = Math.floor(t.timestamp / MINUTE) * MINUTE
      minuteKeys.set(`${t.sensor_id}|${name}|${bucket}`, [t.sensor_id, name, bucket])
    }
  }
  const hourKeys = new Map<string, [number, string, number]>()
  for (const [sensor, name, bucket] of minuteKeys.values()) {
    const from = bucket
    const value = measurement(tx, name)
    const rows = await tx
      .select({ id: readings.id, timestamp: readings.timestamp, value })
      .from(readings)
      .where(
        and(
          eq(readings.sensor_id, sensor),
          gte(readings.timestamp, from),
          lt(readings.timestamp, from + MINUTE),
          lte(readings.id, watermark),
          isNotNull(value),
        ),
      )
    await replaceBucket(tx, rollupsMinute, sensor, name, bucket, fold(rows))
    const hour = Math.floor(bucket / HOUR) * HOUR
    hourKeys.set(`${sensor}|${name}|${hour}`, [sensor, name, hour])
  }
  for (const [sensor, name, hour] of hourKeys.values()) {
    const minutes = await rollupRows(tx, rollupsMinute, [sensor], name, hour, hour + HOUR)
    let total: Partial | undefined
    for (const m of minutes) total = total ? merge(total, m) : { ...m }
    await replaceBucket(tx, rollupsHour as unknown as RollupTable, sensor, name, hour, total)
  }
}

function fold(rows: { id: number; timestamp: number; value: number | null }[]) {
  let total: Partial | undefined
  for (const r of rows) {
    const p = single(Number(r.value), r.timestamp, r.id)
    total = total ? merge(total, p) : p
  }
  return total
}

async function replaceBucket(
  tx: Tx,
  table: RollupTable,
  sensor: number,
  name: string,
  bucket: number,
  total: Partial | undefined,
) {
  await tx
    .delete(table)
    .where(and(eq(table.sensor_id, sensor), eq(table.variable, name), eq(table.bucket, bucket)))
  if (total) {
    const { count, sum, min, max, first, first_ts, first_id, last, last_ts, last_id } = total
    await tx.insert(table).values({
      sensor_id: sensor,
      variable: name,
      bucket,
      count,
      sum,
      min,
      max,
      first,
      first_ts,
      first_id,
      last,
      last_ts,
      last_id,
    })
  }
}

/** Rollup rows of these sensors and variable with bucket in [from, to). */
export const rollupRows = (
  tx: Tx,
  table: RollupTable,
  ids: number[],
  variable: string,
  from: number,
  to: number,
) =>
  tx
    .select()
    .from(table)
    .where(
      and(
        inArray(table.sensor_id, ids),
        eq(table.variable, variable),
        gte(table.bucket, from),
        lt(table.bucket, to),
      ),
    )
