// History at scale (issue 14): a database of `historyReadings` fleet readings over 30 days, written
// directly into Vigía's layout before it starts (bun:sqlite into its file, postgres.js into a fresh
// PostgreSQL database). All but the last million are folded into the rollups during the build by the
// server's own catch-up (src/modules/history/rollups.ts, in large passes), as if the server had kept up;
// the server then catches up the last million itself (timed: until its CPU goes quiet), and is measured:
// aggregate queries (CONTRACT §8), a streamed CSV export with the server's RSS growth, and CSV imports.
// Each part runs only when the build has its route.
import { Database } from 'bun:sqlite'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import type { DatabaseConfig } from '../../src/config'
import { openDatabase } from '../../src/db'
import { catchUpOnce } from '../../src/modules/history/rollups'
import type { Ctx } from '../lib/context'
import {
  fleetStart,
  readingAt,
  VARIABLES,
  type FleetReading,
  type VariableCount,
} from '../lib/fleet'
import { migratePostgres, migrateSqlite, postgresLayout, sqliteLayout } from '../lib/layout'
import { freshDatabase, postgresReachable } from '../lib/pg'
import { cpuSeconds, rssKb } from '../lib/procfs'
import { now } from '../lib/protocol'
import type { HistoryRun } from '../lib/results'
import { call, startServer, type RunningServer } from '../lib/servers'
import { PgWriter, SqliteWriter } from '../lib/writers'
import { NOT_AVAILABLE, timeRequests } from './extras'
import { rollupCost } from './history-cost'
import { pruneLatency } from './history-prune'

const DAY = 86_400_000
const ROUTES = {
  aggregate: 'GET /api/v1/readings/aggregate',
  export: 'GET /api/v1/readings/export',
  import: 'POST /api/v1/readings/import',
}

/** The history's shape: `perSensor` readings of each sensor, evenly spread over 30 days up to `end`. */
function shape(ctx: Ctx) {
  const sensors = ctx.plan.historySensors
  const perSensor = Math.ceil(ctx.plan.historyReadings / sensors)
  const end = fleetStart(0)
  const start = end - 30 * DAY
  const stepMs = Math.max(1000, Math.floor((30 * DAY) / perSensor / 1000) * 1000)
  return {
    sensors,
    perSensor,
    start,
    end,
    stepMs,
    serverFolds: ctx.plan.historyServerFolds,
    vars: ctx.results.meta.fleet!.vars as VariableCount,
  }
}

type Shape = ReturnType<typeof shape>

/**
 * How many instants (all sensors at one time) the build writes before folding them into rollups: all
 * but the last `historyServerFolds` readings, which the server folds itself after it starts.
 */
const foldedSteps = (s: Shape) => Math.max(0, s.perSensor - Math.ceil(s.serverFolds / s.sensors))

/**
 * Folds every reading written so far into the rollups with the server's own catch-up, in passes larger
 * than the server's (it folds 10,000 at a time beside ingest; nothing else writes here).
 */
async function foldWritten(config: DatabaseConfig, pass: number) {
  const db = await openDatabase(config)
  try {
    while ((await catchUpOnce(db, pass)) > 0);
  } finally {
    await db.close()
  }
}

/** The readings of instants [from, to) in time order (all sensors at one instant, then the next). */
function* batches(s: Shape, seed: number, size: number, from = 0, to = s.perSensor) {
  let batch = []
  for (let k = from; k < to; k++)
    for (let sensor = 1; sensor <= s.sensors; sensor++) {
      batch.push(readingAt(seed, sensor, s.start + k * s.stepMs, s.vars))
      if (batch.length === size) {
        yield batch
        batch = []
      }
    }
  if (batch.length) yield batch
}

async function buildSqlite(ctx: Ctx, s: Shape, file: string) {
  const db = new Database(file, { create: true })
  try {
    SqliteWriter.pragmas(db)
    // The server's catch-up opens the file beside this connection (its checkpoints take the lock briefly).
    db.run('PRAGMA busy_timeout = 30000')
    await migrateSqlite(db)
    const layout = sqliteLayout(db)
    const w = new SqliteWriter(db, layout)
    w.createSensors(s.sensors)
    w.ensureLookups(VARIABLES.slice(0, s.vars))
    const seed = ctx.results.meta.fleet!.seed
    const cut = foldedSteps(s)
    for (const batch of batches(s, seed, 10_000, 0, cut)) w.write(batch)
    const folds = cut > 0 && layout.has('history_state')
    if (folds) await foldWritten({ kind: 'sqlite', path: file, url: `sqlite:${file}` }, 200_000)
    for (const batch of batches(s, seed, 10_000, cut)) w.write(batch)
    // The server's variable registry, as its ingest fills it (the export's CSV columns come from it).
    const register = db.prepare(
      'insert or ignore into variables (name, created_at, updated_at) values (?, ?, ?)',
    )
    for (const name of VARIABLES.slice(0, s.vars)) register.run(name, s.end, s.end)
    db.run('PRAGMA wal_checkpoint(TRUNCATE)')
    return folds ? cut * s.sensors : 0
  } finally {
    db.close()
  }
}

async function buildPostgres(ctx: Ctx, s: Shape, url: string) {
  const sql = postgres(url, { max: 4, onnotice: () => {} })
  try {
    await migratePostgres(sql)
    const layout = await postgresLayout(sql)
    const w = new PgWriter(sql, layout)
    await w.createSensors(s.sensors)
    await w.ensureLookups(VARIABLES.slice(0, s.vars))
    const seed = ctx.results.meta.fleet!.seed
    const write = async (source: Generator<FleetReading[]>) => {
      const lane = async () => {
        for (let next = source.next(); !next.done; next = source.next()) await w.write(next.value)
      }
      await Promise.all([lane(), lane(), lane(), lane()])
    }
    const cut = foldedSteps(s)
    await write(batches(s, seed, 10_000, 0, cut))
    const folds = cut > 0 && layout.has('history_state')
    if (folds) {
      await sql`analyze`
      await foldWritten({ kind: 'postgres', url }, 1_000_000)
    }
    await write(batches(s, seed, 10_000, cut))
    for (const name of VARIABLES.slice(0, s.vars))
      await sql`insert into variables (name, created_at, updated_at) values (${name}, ${s.end}, ${s.end}) on conflict do nothing`
    await sql`analyze`
    return folds ? cut * s.sensors : 0
  } finally {
    await sql.end({ timeout: 2 })
  }
}

/** Waits until the server's CPU stays under 10% of a core for two seconds (or `capMs` passes). */
async function settle(server: RunningServer, capMs: number) {
  const start = now()
  let quiet = 0
  let last = cpuSeconds(server.pid)
  while (now() - start < capMs && quiet < 2) {
    await Bun.sleep(1000)
    const cpu = cpuSeconds(server.pid)
    quiet = cpu - last < 0.1 ? quiet + 1 : 0
    last = cpu
  }
  return (now() - start) / 1000
}

/**
 * Waits until the rollups' watermark has reached the last reading (PostgreSQL folds a pass in the
 * database, where the server's CPU does not show it), or `capMs` passes; at once for a build without them.
 */
async function rollupsCaughtUp(
  where: { postgresUrl?: string; sqliteFile?: string },
  capMs: number,
) {
  const query =
    'select (select coalesce(max(watermark), 0) from history_state) >= (select coalesce(max(id), 0) from readings) as done'
  const start = now()
  if (where.postgresUrl) {
    const sql = postgres(where.postgresUrl, { max: 1, onnotice: () => {} })
    try {
      const [table] = await sql`select to_regclass('history_state') is not null as present`
      if (!table!.present) return
      while (now() - start < capMs && !(await sql.unsafe(query))[0]!.done) await Bun.sleep(1000)
    } finally {
      await sql.end({ timeout: 2 })
    }
  } else {
    const db = new Database(where.sqliteFile!, { readonly: true })
    try {
      const table = db.query("select 1 from sqlite_master where name = 'history_state'").get()
      if (!table) return
      while (now() - start < capMs && !db.query<{ done: number }, []>(query).get()!.done)
        await Bun.sleep(1000)
    } finally {
      db.close()
    }
  }
}

const iso = (ms: number) => new Date(ms).toISOString()

async function measureAggregate(ctx: Ctx, server: RunningServer, s: Shape, run: HistoryRun) {
  const n = ctx.plan.latestRequests
  const q = (params: Record<string, string>) =>
    `/api/v1/readings/aggregate?${new URLSearchParams(params).toString()}`
  const sensorOf = (i: number) => String((i % s.sensors) + 1)
  const queries = [
    {
      label: '30 days of one sensor, 1 h buckets',
      path: (i: number) =>
        q({
          sensor_id: sensorOf(i),
          variable: 'temperatura',
          from: iso(s.start),
          to: iso(s.end),
          bucket: '1h',
          fn: 'avg,min,max,count',
        }),
    },
    {
      label: '24 h of one sensor, 1 min buckets',
      path: (i: number) =>
        q({
          sensor_id: sensorOf(i),
          variable: 'temperatura',
          from: iso(s.end - DAY),
          to: iso(s.end),
          bucket: '1m',
          fn: 'avg,min,max,count',
        }),
    },
    {
      label: '30 days of 10 sensors, 1 d buckets, every fn',
      path: () =>
        q({
          sensor_id: '1,2,3,4,5,6,7,8,9,10',
          variable: 'humedad',
          from: iso(s.start),
          to: iso(s.end),
          bucket: '1d',
          fn: 'avg,min,max,count,sum,first,last',
        }),
    },
  ]
  for (const query of queries) {
    const timing = await timeRequests(query.label, n, (i) =>
      call(server.base, 'GET', query.path(i)),
    )
    run.aggregate.push(timing)
    ctx.log(
      `  ${run.engine} aggregate, ${query.label}: p50 ${timing.p50.toFixed(1)} ms, p99 ${timing.p99.toFixed(1)} ms (status ${timing.status}, ${timing.rows} rows)`,
    )
  }
  // Exact against what was written: one sensor's counts over 30 days add up to its readings.
  const check = await call(server.base, 'GET', queries[0]!.path(0))
  const counted = Array.isArray(check.body)
    ? check.body.reduce((a: number, r: { count?: number }) => a + (r.count ?? 0), 0)
    : NaN
  run.notes.push(
    counted === s.perSensor
      ? `the 30-day count of sensor 1 matches the ${s.perSensor.toLocaleString('en-US')} readings written`
      : `**the 30-day count of sensor 1 is ${counted}, not the ${s.perSensor} readings written**`,
  )
}

async function measureExport(ctx: Ctx, server: RunningServer, s: Shape, run: HistoryRun) {
  const total = s.perSensor * s.sensors
  const want = Math.min(1_000_000, total)
  const from = s.end - Math.ceil((want / total) * 30 * DAY)
  const url = `${server.base}/api/v1/readings/export?format=csv&from=${iso(from)}&to=${iso(s.end)}`
  const before = rssKb(server.pid)
  let peak = before
  const sampler = setInterval(() => (peak = Math.max(peak, rssKb(server.pid))), 20)
  const t0 = now()
  const res = await fetch(url)
  let bytes = 0
  let lines = 0
  let header = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    if (!header) header = new TextDecoder().decode(chunk.subarray(0, chunk.indexOf(10)))
    bytes += chunk.length
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) lines += 1
  }
  const seconds = (now() - t0) / 1000
  clearInterval(sampler)
  peak = Math.max(peak, rssKb(server.pid))
  if (res.status !== 200) throw new Error(`export answered ${res.status}`)
  const rows = Math.max(0, lines - 1)
  run.export = {
    rows,
    seconds,
    perSecond: rows / seconds,
    bytes,
    rssGrowthMb: (peak - before) / 1024,
  }
  ctx.log(
    `  ${run.engine} export: ${rows} rows in ${seconds.toFixed(2)} s, RSS +${((peak - before) / 1024).toFixed(1)} MB`,
  )
  return header
}

/** Imports measured one after the other (the first into a server that has not imported yet). */
const IMPORTS = 3

async function measureImport(
  ctx: Ctx,
  server: RunningServer,
  s: Shape,
  hr: HistoryRun,
  header?: string,
) {
  const names = header
    ? header.split(',').filter((c) => c !== 'id' && c !== 'sensor_id' && c !== 'timestamp')
    : [...VARIABLES.slice(0, s.vars)].sort()
  const seed = ctx.results.meta.fleet!.seed
  const rows = ctx.plan.importRows
  const runs: { perSecond: number; seconds: number; status: number }[] = []
  // One after the other, each into the time range after the previous one's.
  for (let run = 0; run < IMPORTS; run++) {
    const lines = [['sensor_id', 'timestamp', ...names].join(',')]
    const base = run * (Math.ceil(rows / s.sensors) + 1)
    for (let i = 0; i < rows; i++) {
      const sensor = (i % s.sensors) + 1
      const at = s.end + (base + Math.floor(i / s.sensors)) * 1000
      const r = readingAt(seed, sensor, at, s.vars)
      lines.push([sensor, iso(r.ms), ...names.map((n) => r.values[n as 'co2'] ?? '')].join(','))
    }
    const body = `${lines.join('\n')}\n`
    const t0 = now()
    const res = await fetch(`${server.base}/api/v1/readings/import`, {
      method: 'POST',
      headers: { 'content-type': 'text/csv' },
      body,
    })
    const answer = await res.text()
    const seconds = (now() - t0) / 1000
    runs.push({ perSecond: rows / seconds, seconds, status: res.status })
    if (res.status >= 300) hr.notes.push(`import answered ${res.status}: ${answer.slice(0, 200)}`)
    ctx.log(
      `  ${hr.engine} import ${run + 1}: ${rows} rows in ${seconds.toFixed(2)} s (status ${res.status})`,
    )
  }
  const median = [...runs].sort((a, b) => a.perSecond - b.perSecond)[Math.floor(runs.length / 2)]!
  const status = Math.max(...runs.map((r) => r.status))
  hr.import = {
    rows,
    seconds: median.seconds,
    perSecond: median.perSecond,
    status,
    runs: runs.map((r) => r.perSecond),
  }
}

export async function historyRun(ctx: Ctx, engine: 'sqlite' | 'postgres', routes: Set<string>) {
  const s = shape(ctx)
  const dir = mkdtempSync(join(tmpdir(), 'vigia-bench-history-'))
  const db = engine === 'postgres' ? await freshDatabase() : undefined
  let server: RunningServer | undefined
  try {
    const t0 = now()
    const foldedAtBuild = db
      ? await buildPostgres(ctx, s, db.url)
      : await buildSqlite(ctx, s, join(dir, 'history.db'))
    const buildSeconds = (now() - t0) / 1000
    const readings = s.perSensor * s.sensors
    ctx.log(
      `  ${engine} history: ${readings.toLocaleString('en-US')} readings written in ${buildSeconds.toFixed(1)} s`,
    )
    const where = db ? { postgresUrl: db.url } : { sqliteFile: join(dir, 'history.db') }
    server = await startServer('vigia', 2000, {
      profileDir: ctx.profile,
      ...where,
      startTimeoutMs: 900_000,
    })
    const settleStart = now()
    await settle(server, 900_000)
    await rollupsCaughtUp(where, 900_000)
    const settleSeconds = (now() - settleStart) / 1000
    const run: HistoryRun = {
      engine,
      readings,
      sensors: s.sensors,
      buildSeconds,
      foldedAtBuild,
      settleSeconds,
      aggregate: [],
      notes: [],
    }
    if (routes.has(ROUTES.aggregate)) await measureAggregate(ctx, server, s, run)
    const header = routes.has(ROUTES.export) ? await measureExport(ctx, server, s, run) : undefined
    if (routes.has(ROUTES.import)) await measureImport(ctx, server, s, run, header)
    if (routes.has(ROUTES.aggregate))
      run.prune = await pruneLatency(ctx, server, where, {
        sensors: s.sensors,
        end: s.end,
        vars: s.vars,
      }).catch((error) => {
        run.notes.push(`write latency while pruning not measured: ${String(error).slice(0, 200)}`)
        return undefined
      })
    await server.stop()
    server = undefined
    if (routes.has(ROUTES.aggregate))
      run.rollupCost = await rollupCost(ctx, engine).catch((error) => {
        run.notes.push(
          `ingest with and without rollups not measured: ${String(error).slice(0, 200)}`,
        )
        return undefined
      })
    return run
  } finally {
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
    await db?.drop()
  }
}

export async function historyPhases(ctx: Ctx, routes: Set<string>) {
  for (const [part, route] of Object.entries(ROUTES))
    if (!routes.has(route)) ctx.skip(`history: ${part}`, NOT_AVAILABLE(route))
  if (!Object.values(ROUTES).some((r) => routes.has(r))) return
  const pgDown = ctx.plan.historyEngines.includes('postgres')
    ? await postgresReachable()
    : undefined
  if (pgDown) ctx.skip('history on PostgreSQL', pgDown)
  for (const engine of ctx.plan.historyEngines.filter((e) => !(e === 'postgres' && pgDown))) {
    const run = await ctx.attempt(`history on ${engine}`, () => historyRun(ctx, engine, routes))
    if (run) ctx.results.history.push(run)
  }
}
