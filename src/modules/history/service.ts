// Aggregates over readings (CONTRACT §8): whole minutes or hours from the rollups, plus the readings the
// rollup worker has not folded yet and the partial edges from raw rows, all read in one snapshot, so
// the answer is exact at any moment (docs/storage.md#history).
import { and, gt, gte, inArray, isNotNull, lt, max, sql } from 'drizzle-orm'
import type { Config } from '../../config'
import { isSqlite, type Tx } from '../../db'
import { measurement } from '../../db/measurements'
import { readings, rollupsHour, rollupsMinute, sensors } from '../../db/schema'
import type { Services } from '../../context'
import { AppError, InvalidFieldError, UnknownReferenceError } from '../../lib/errors'
import { instant, iso } from '../../lib/time'
import type { AggregateQuery, AggregateRow, Fn } from './model'
import {
  historyStateOf,
  HOUR,
  merge,
  MINUTE,
  rollupRows,
  single,
  type Partial,
  type RollupTable,
} from './rollups'

const UNIT_MS = { s: 1000, m: MINUTE, h: HOUR, d: 24 * HOUR } as const
const MAX_BUCKET_MS = 30 * 24 * HOUR
const DEFAULT_FNS: Fn[] = ['avg', 'min', 'max', 'count']

/** A query whose answer could hold more rows than AGGREGATE_MAX_ROWS. */
export class TooManyRowsError extends AppError {
  constructor(rows: number, maxRows: number) {
    super(
      422,
      'too_many_rows',
      `This query could answer up to ${rows} rows (sensors × buckets in the range), more than the ${maxRows} allowed (AGGREGATE_MAX_ROWS): narrow from/to, use a larger bucket, or ask for fewer sensors.`,
      { field: 'bucket', rows, max_rows: maxRows },
    )
  }
}

export function parseBucket(text: string) {
  const match = /^(\d+)([smhd])$/.exec(text)
  const ms = match ? Number(match[1]) * UNIT_MS[match[2] as keyof typeof UNIT_MS] : NaN
  if (!(ms >= 1000 && ms <= MAX_BUCKET_MS))
    throw new InvalidFieldError(
      'bucket',
      `bucket "${text}" is not a size from 1s to 30d; write <n>s, <n>m, <n>h or <n>d, such as 5m.`,
    )
  return ms
}

export interface AggregateRequest {
  ids: number[]
  variable: string
  from: number
  to: number
  bucketMs: number
  fns: Fn[]
}

/** Checks the query beyond its schema: real instants, from < to, the bucket, the row bound. */
export function parseAggregate(q: AggregateQuery, maxRows: number): AggregateRequest {
  const ids = [...new Set(q.sensor_id.split(',').map(Number))].sort((a, b) => a - b)
  if (ids.some((id) => !Number.isSafeInteger(id)))
    throw new InvalidFieldError('sensor_id', 'sensor_id takes sensor ids such as 1 or 1,2.')
  const from = instant(q.from, 'from')
  const to = instant(q.to, 'to')
  if (to <= from)
    throw new InvalidFieldError('to', `to (${q.to}) must be later than from (${q.from}).`)
  const bucketMs = parseBucket(q.bucket)
  const buckets = Math.floor((to - 1) / bucketMs) - Math.floor(from / bucketMs) + 1
  if (buckets * ids.length > maxRows) throw new TooManyRowsError(buckets * ids.length, maxRows)
  const fns = q.fn ? ([...new Set(q.fn.split(','))] as Fn[]) : DEFAULT_FNS
  return { ids, variable: q.variable, from, to, bucketMs, fns }
}

type Buckets = Map<number, Map<number, Partial>>

function add(into: Buckets, sensor: number, bucket: number, p: Partial) {
  let bySensor = into.get(bucket)
  if (!bySensor) into.set(bucket, (bySensor = new Map()))
  const current = bySensor.get(sensor)
  if (current) merge(current, p)
  else bySensor.set(sensor, { ...p })
}

/** Raw readings of the sensors in [from, to) measuring the variable; `afterId` keeps ids above it. */
async function rawRows(tx: Tx, r: AggregateRequest, from: number, to: number, afterId?: number) {
  const value = measurement(tx, r.variable)
  const sqlite = isSqlite(tx)
  // The not-yet-folded tail is found by id (a short range at the end of the primary key); on SQLite
  // the unary + keeps the planner off the (sensor_id, timestamp) index, which would scan the range.
  const where =
    afterId === undefined
      ? and(
          inArray(readings.sensor_id, r.ids),
          gte(readings.timestamp, from),
          lt(readings.timestamp, to),
          isNotNull(value),
        )
      : sqlite
        ? and(
            gt(readings.id, afterId),
            sql`+${readings.sensor_id} in (${sql.join(
              r.ids.map((id) => sql`${id}`),
              sql`, `,
            )})`,
            sql`+${readings.timestamp} >= ${from}`,
            sql`+${readings.timestamp} < ${to}`,
            isNotNull(value),
          )
        : and(
            gt(readings.id, afterId),
            inArray(readings.sensor_id, r.ids),
            gte(readings.timestamp, from),
            lt(readings.timestamp, to),
            isNotNull(value),
          )
  return tx
    .select({
      id: readings.id,
      sensor_id: readings.sensor_id,
      timestamp: readings.timestamp,
      value,
    })
    .from(readings)
    .where(where)
}

async function collect(tx: Tx, r: AggregateRequest) {
  const out: Buckets = new Map()
  const B = r.bucketMs
  const foldRaw = (rows: Awaited<ReturnType<typeof rawRows>>) => {
    for (const row of rows)
      add(
        out,
        row.sensor_id,
        Math.floor(row.timestamp / B) * B,
        single(Number(row.value), row.timestamp, row.id),
      )
  }
  // Whole rollup buckets inside [from, to), when the query's buckets are made of them.
  const grain = B % HOUR === 0 ? HOUR : B % MINUTE === 0 ? MINUTE : 0
  const a = grain ? Math.ceil(r.from / grain) * grain : 0
  const b = grain ? Math.floor(r.to / grain) * grain : 0
  if (!grain || a >= b) {
    foldRaw(await rawRows(tx, r, r.from, r.to))
    return out
  }
  const { watermark } = await historyStateOf(tx)
  const table = grain === HOUR ? (rollupsHour as unknown as RollupTable) : rollupsMinute
  for (const row of await rollupRows(tx, table, r.ids, r.variable, a, b))
    add(out, row.sensor_id, Math.floor(row.bucket / B) * B, row)
  const [newest] = await tx.select({ id: max(readings.id) }).from(readings)
  if ((newest?.id ?? 0) > watermark) foldRaw(await rawRows(tx, r, a, b, watermark))
  if (r.from < a) foldRaw(await rawRows(tx, r, r.from, a))
  if (b < r.to) foldRaw(await rawRows(tx, r, b, r.to))
  return out
}

const round = (p: Partial, fn: Fn) => {
  switch (fn) {
    case 'avg':
      return p.sum / p.count
    case 'first':
      return p.first
    case 'last':
      return p.last
    default:
      return p[fn]
  }
}

/** GET /api/v1/readings/aggregate: one row per sensor and bucket holding readings, in time order. */
export async function aggregate(
  services: Services,
  config: Pick<Config, 'history'>,
  q: AggregateQuery,
) {
  const r = parseAggregate(q, config.history.aggregateMaxRows)
  const known = new Set(
    (
      await services.db.read
        .select({ id: sensors.id })
        .from(sensors)
        .where(inArray(sensors.id, r.ids))
    ).map((s) => s.id),
  )
  const missing = r.ids.find((id) => !known.has(id))
  if (missing !== undefined)
    throw new UnknownReferenceError(
      'sensor_id',
      'Sensor',
      missing,
      'list sensors with GET /api/v1/sensors.',
    )
  const buckets = await services.db.snapshot((tx) => collect(tx, r))
  const rows: AggregateRow[] = []
  for (const bucket of [...buckets.keys()].sort((x, y) => x - y)) {
    const bySensor = buckets.get(bucket)!
    for (const sensor of [...bySensor.keys()].sort((x, y) => x - y)) {
      const p = bySensor.get(sensor)!
      const row: AggregateRow = { sensor_id: sensor, variable: r.variable, bucket: iso(bucket) }
      for (const fn of r.fns) row[fn] = round(p, fn)
      rows.push(row)
    }
  }
  return rows
}
