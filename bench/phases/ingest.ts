// Ingest on the fleet load: single POSTs and batches into Vigía on SQLite, on PostgreSQL and as two
// instances on one PostgreSQL (senders split between them), each batch run followed by its reference
// (the storage itself writing the same rows) so the two alternate under the same outside load. A live
// subscriber checks every reading arrives once, in seq order, each sensor's in time order.
import { join } from 'node:path'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import type { Ctx } from '../lib/context'
import { LOAD } from '../lib/context'
import { deal, type VariableCount } from '../lib/fleet'
import { grownStates, seedStates } from '../lib/grown-states'
import { merge, newHistogram, summarize, type Latency } from '../lib/histogram'
import { freshDatabase, postgresReachable, REDIS_URL, redisPrefix } from '../lib/pg'
import { Child, pids, sum, workers } from '../lib/pool'
import { cpuWindow } from '../lib/procfs'
import { now, type ConnectReply, type FinishReply, type SendReply } from '../lib/protocol'
import type { Backend, IngestRun } from '../lib/results'
import {
  ALLOCATOR_ENV,
  call,
  startServer,
  type RunningServer,
  type ServerOptions,
} from '../lib/servers'
import type { ReferenceCommand, ReferenceReply } from '../reference'
import { createFleet, template } from './fleet-setup'

export interface IngestConfig {
  label: string
  batch: number
  concurrency: number
  /** Sends `Prefer: return=minimal`: the server answers 201 without the stored readings. */
  minimal?: boolean
}

export const SINGLE: IngestConfig[] = [
  { label: 'single POST, 1 sender', batch: 1, concurrency: 1 },
  { label: 'single POST, 16 senders', batch: 1, concurrency: 16 },
  { label: 'single POST, 64 senders', batch: 1, concurrency: 64 },
]
export const BATCH: IngestConfig[] = [
  { label: 'batch of 100, 4 in flight', batch: 100, concurrency: 4 },
  { label: 'batch of 1,000, 4 in flight', batch: 1000, concurrency: 4 },
]
/** The same batches from a gateway that does not need them sent back. */
const MINIMAL: IngestConfig = {
  label: 'batch of 1,000, 4 in flight, Prefer: return=minimal',
  batch: 1000,
  concurrency: 4,
  minimal: true,
}

const CONFIGS: Record<'all' | 'few', Record<Backend, IngestConfig[]>> = {
  all: {
    sqlite: [...SINGLE, ...BATCH, MINIMAL],
    postgres: [...SINGLE, ...BATCH, MINIMAL],
    'postgres-2': [SINGLE[2]!, BATCH[1]!],
  },
  few: {
    sqlite: [SINGLE[1]!, BATCH[1]!],
    postgres: [SINGLE[1]!, BATCH[1]!],
    'postgres-2': [BATCH[1]!],
  },
}

export const BACKEND_LABEL: Record<Backend, string> = {
  sqlite: 'Vigía on SQLite',
  postgres: 'Vigía on PostgreSQL',
  'postgres-2': 'two Vigía instances on one PostgreSQL',
}

const none: Latency = { count: 0, p50: NaN, p99: NaN, max: NaN }

/** Vigía's server(s) for one run: a fresh database each time; two instances share it and Redis. */
async function startVigia(ctx: Ctx, backend: Backend, bare?: true) {
  if (bare) {
    const server = await startServer('bun', 2000)
    return { servers: [server], stop: () => server.stop() }
  }
  const db = backend === 'sqlite' ? undefined : await freshDatabase()
  const options: ServerOptions = { profileDir: ctx.profile, postgresUrl: db?.url }
  if (backend === 'postgres-2') options.redis = { url: REDIS_URL, prefix: redisPrefix() }
  const servers: RunningServer[] = []
  try {
    servers.push(await startServer('vigia', 2000, { ...options, env: { INSTANCE_ID: 'bench-a' } }))
    if (backend === 'postgres-2')
      servers.push(
        await startServer('vigia', 2000, { ...options, env: { INSTANCE_ID: 'bench-b' } }),
      )
  } catch (error) {
    await Promise.all(servers.map((s) => s.stop()))
    await db?.drop()
    throw error
  }
  return {
    servers,
    async stop() {
      await Promise.all(servers.map((s) => s.stop()))
      await db?.drop()
    },
  }
}

export interface VigiaIngestOptions {
  backend: Backend
  load: 'fleet' | 'identical'
  /** Extra setup on the running server before the phases (a webhook). */
  before?: (server: RunningServer) => Promise<void>
  webhook?: IngestRun['webhook']
  breach?: true
  /** Another variable count than the run's (the two-against-five comparison). */
  vars?: VariableCount
  /** The bare Bun.serve server instead of Vigía (nothing stored): the host's ceiling for the same POSTs. */
  bare?: true
  /** The measured phase's length, when not the plan's ingestMs; and a look at the server before it stops. */
  measureMs?: number
  inspect?: (server: RunningServer, run: IngestRun) => Promise<void>
}

/**
 * One measured Vigía run: fresh server(s), the fleet's sensors, a warm-up phase, the measured phase. With
 * `bare`, the same phases against the bare Bun.serve server (no sensors to create, nothing stored).
 */
export async function vigiaRun(
  ctx: Ctx,
  config: IngestConfig,
  rep: number,
  o: VigiaIngestOptions,
): Promise<IngestRun> {
  const fleet = ctx.results.meta.fleet!
  const vigia = await startVigia(ctx, o.backend, o.bare)
  const { servers } = vigia
  const subscriber = workers[0]!
  const senders = config.concurrency === 1 ? [workers[1]!] : [workers[1]!, workers[2]!]
  const identical = o.load === 'identical'
  const sensors = identical ? 1 : fleet.sensors
  const vars = identical ? 2 : (o.vars ?? (fleet.vars as VariableCount))
  try {
    if (!o.bare) await createFleet(servers[0]!, sensors)
    if (!identical && !o.bare)
      await seedStates(
        servers[0]!.databaseUrl!,
        grownStates(fleet.seed, sensors, fleet.startMs, vars),
      )
    await o.before?.(servers[0]!)
    const c = await subscriber.call<ConnectReply>({
      t: 'connect',
      url: servers[0]!.wsUrl('readings'),
      proto: 'ws',
      count: 1,
      concurrency: 1,
      official: 0,
    })
    if (c.ready !== 1) throw new Error('the live subscriber could not connect')
    const ids = Array.from({ length: sensors }, (_, i) => i + 1)
    const lanes = identical
      ? Array.from({ length: config.concurrency }, () => [1])
      : deal(ids, config.concurrency)
    await Promise.all(
      senders.map((w, i) =>
        w.call({
          t: 'fleet',
          lanes: lanes.filter((_, k) => k % senders.length === i),
          vars,
          seed: fleet.seed,
          startMs: fleet.startMs,
          identical,
        }),
      ),
    )
    // Two instances: each sender process talks to its own instance.
    const baseOf = (i: number) => servers[i % servers.length]!.base
    const phase = async (id: number, durationMs: number) => {
      const base = now()
      await subscriber.call({
        t: 'expect',
        phase: id,
        base,
        kind: 'fleet',
        startMs: identical ? 0 : fleet.startMs,
      })
      const cpu = cpuWindow(
        servers.map((s) => s.pid),
        pids(),
        { database: o.backend !== 'sqlite' },
      )
      const replies = await Promise.all(
        senders.map((w, i) =>
          w.call<SendReply>({
            t: 'ingest',
            base: baseOf(i),
            batch: config.batch,
            minimal: config.minimal,
            durationMs,
          }),
        ),
      )
      const readings = sum(replies.map((r) => r.ok))
      const fin = await subscriber.call<FinishReply>({
        t: 'finish',
        total: readings,
        timeoutMs: LOAD.finishTimeoutMs,
      })
      return { replies, readings, fin, cpu: cpu() }
    }
    await phase(1, ctx.plan.ingestWarmupMs)
    const { replies, readings, fin, cpu } = await phase(2, o.measureMs ?? ctx.plan.ingestMs)
    const open = o.breach
      ? await call(
          servers[0]!.base,
          'GET',
          '/api/v1/anomalies?rule=threshold&status=open&limit=500',
        )
      : undefined
    const first = Math.min(...replies.map((r) => r.first))
    const lastAnswer = Math.max(...replies.map((r) => r.last))
    const seconds = Math.max(fin.last - first, 1e-3) / 1000
    const errors = sum(replies.map((r) => r.errors))
    const request = merge(replies.map((r) => r.hist))
    const delivery = deliveryLatency(replies, fin)
    const run: IngestRun = {
      label: config.label,
      backend: o.backend,
      system: o.bare ? 'bare' : 'vigia',
      load: o.load,
      webhook: o.webhook,
      breach: o.breach,
      openAnomalies: Array.isArray(open?.body) ? open.body.length : undefined,
      vars,
      sensors,
      batch: config.batch,
      concurrency: config.concurrency,
      rep,
      readings,
      errors,
      error: replies.find((r) => r.error)?.error,
      seconds,
      perSecond: readings / seconds,
      committedPerSecond: (readings / Math.max(lastAnswer - first, 1e-3)) * 1000,
      delivered: fin.received,
      verified: fin.received === readings && fin.short === 0 && errors === 0 && readings > 0,
      request: summarize(request),
      delivery,
      cpu,
    }
    request.destroy()
    await o.inspect?.(servers[0]!, run)
    await subscriber.call({ t: 'close' })
    return run
  } finally {
    await subscriber.call({ t: 'close' }).catch(() => undefined)
    await vigia.stop()
  }
}

/** Request sent → subscriber has it, for the sampled sensors' readings (matched by sensor and time). */
function deliveryLatency(replies: SendReply[], fin: FinishReply): Latency {
  const sent = new Map<number, number>()
  for (const r of replies)
    for (let i = 0; i + 1 < (r.samples?.length ?? 0); i += 2)
      sent.set(r.samples![i]!, r.samples![i + 1]!)
  const got = fin.samples ?? []
  if (sent.size === 0 || got.length === 0) return none
  const h = newHistogram()
  for (let i = 0; i + 1 < got.length; i += 2) {
    const at = sent.get(got[i]!)
    if (at !== undefined) h.recordValue(Math.max(1, Math.round((got[i + 1]! - at) * 1000)))
  }
  const out = summarize(h)
  h.destroy()
  return out
}

/** One reference run: a fresh database with the build's layout, the same fleet, the same batches. */
export async function referenceRun(
  ctx: Ctx,
  config: IngestConfig,
  rep: number,
  engine: 'sqlite' | 'postgres',
): Promise<IngestRun> {
  const fleet = ctx.results.meta.fleet!
  const ref = new Child<ReferenceCommand>('bench/reference.ts', ALLOCATOR_ENV)
  const dir = engine === 'sqlite' ? mkdtempSync(join(tmpdir(), 'vigia-bench-ref-')) : undefined
  const db = engine === 'postgres' ? await freshDatabase() : undefined
  try {
    await ref.up
    await ref.call({
      t: 'setup',
      engine,
      target: dir ? join(dir, 'ref.db') : db!.url,
      sensors: fleet.sensors,
      vars: fleet.vars as VariableCount,
      seed: fleet.seed,
      startMs: fleet.startMs,
      template: template(ctx),
      lanes: config.concurrency,
    })
    await ref.call<ReferenceReply>({
      t: 'run',
      batch: config.batch,
      durationMs: ctx.plan.ingestWarmupMs,
    })
    const cpu = cpuWindow(ref.pid, pids(), { database: engine === 'postgres' })
    const r = await ref.call<ReferenceReply>({
      t: 'run',
      batch: config.batch,
      durationMs: ctx.plan.ingestMs,
    })
    const used = cpu()
    await ref.call({ t: 'close' })
    return {
      label: config.label,
      backend: engine,
      system: 'reference',
      load: 'fleet',
      vars: fleet.vars,
      sensors: fleet.sensors,
      batch: config.batch,
      concurrency: config.concurrency,
      rep,
      readings: r.rows,
      errors: 0,
      seconds: r.busy,
      perSecond: r.perSecond,
      committedPerSecond: r.perSecond,
      delivered: r.rows,
      verified: r.rows > 0,
      request: none,
      delivery: none,
      cpu: used,
    }
  } finally {
    await ref.stop()
    if (dir) rmSync(dir, { recursive: true, force: true })
    await db?.drop()
  }
}

const rate = (n: number) => Math.round(n).toLocaleString('en-US')

/**
 * Defaults for the fleet's sensor type that most of its series cross (the cycle of an afternoon, humid
 * nights, occupied hours): the detector opens an anomaly per sensor variable and folds every batch's
 * hits into it, one update each.
 */
export const HEAT_WAVE = { temperatura: { max: 20 }, humedad: { max: 55 }, co2: { max: 600 } }

async function heatWave(server: RunningServer) {
  const r = await call(server.base, 'PUT', '/api/v1/sensor-types/temperatura/thresholds', HEAT_WAVE)
  if (r.status !== 200) throw new Error(`PUT thresholds answered ${r.status}`)
}

/** Every ingest phase, repeated; each batch run of Vigía followed at once by its reference. */
export async function ingestPhases(ctx: Ctx) {
  const pgDown = await postgresReachable()
  const backends = (['sqlite', 'postgres', 'postgres-2'] as Backend[]).filter(
    (b) => !ctx.backends || ctx.backends.includes(b),
  )
  for (const b of backends)
    if (b !== 'sqlite' && pgDown) ctx.skip(`ingest: ${BACKEND_LABEL[b]}`, pgDown)
  const push = (run: IngestRun | undefined, what: string) => {
    if (!run) return
    ctx.results.ingest.push(run)
    ctx.log(
      `${what}: ${rate(run.perSecond)} readings/s` +
        (run.system !== 'reference'
          ? ` (${run.delivered}/${run.readings} at the subscriber${run.verified ? '' : ', NOT VERIFIED'}${run.error ? `, ${run.errors} errors: ${run.error}` : ''})`
          : ` (${rate(run.readings)} rows)`),
    )
  }
  const fleet = () => ctx.results.meta.fleet!
  for (let rep = 1; rep <= ctx.plan.ingestReps; rep++) {
    for (const backend of backends) {
      if (backend !== 'sqlite' && pgDown) continue
      for (const config of CONFIGS[ctx.plan.ingestSet][backend]) {
        const what = `ingest: ${BACKEND_LABEL[backend]}, ${config.label}, run ${rep}`
        push(
          await ctx.attempt(what, () => vigiaRun(ctx, config, rep, { backend, load: 'fleet' })),
          what,
        )
        // The host's ceiling for single POSTs, once a repeat: the bare server right after Vigía's run
        // with the most senders.
        const singles = CONFIGS[ctx.plan.ingestSet][backend].filter((c) => c.batch === 1)
        if (config === singles.at(-1) && backend === backends.find((b) => b !== 'postgres-2')) {
          const bare = `ingest: bare Bun.serve (nothing stored), ${config.label}, run ${rep}`
          push(
            await ctx.attempt(bare, () =>
              vigiaRun(ctx, config, rep, { backend, load: 'fleet', bare: true }),
            ),
            bare,
          )
        }
        if (config.batch > 1 && backend !== 'postgres-2') {
          const engine = backend === 'sqlite' ? 'sqlite' : 'postgres'
          const ref = `reference: plain ${engine === 'sqlite' ? 'bun:sqlite' : 'postgres.js'}, ${config.label}, run ${rep}`
          push(await ctx.attempt(ref, () => referenceRun(ctx, config, rep, engine)), ref)
        }
        // Issue 13: five variables within 1.3× of two; the same run with two, after
        // the five-variable run's reference (which follows that run at once).
        if (
          backend === 'sqlite' &&
          fleet().vars === 5 &&
          (config === SINGLE[2] || config === BATCH[1])
        ) {
          const two = `${what}, 2 variables`
          const run = await ctx.attempt(two, () =>
            vigiaRun(ctx, config, rep, { backend, load: 'fleet', vars: 2 }),
          )
          if (run) run.label = `${config.label}, 2 variables`
          push(run, two)
        }
        if (config === BATCH[1] && backend !== 'postgres-2') {
          const hot = `${what}, thresholds breached`
          const run = await ctx.attempt(hot, () =>
            vigiaRun(ctx, config, rep, { backend, load: 'fleet', breach: true, before: heatWave }),
          )
          if (run) run.label = `${config.label}, thresholds breached`
          push(run, hot)
        }
      }
    }
    if (!backends.includes('sqlite')) continue
    const upper = `ingest: upper bound (identical readings), ${BATCH[1]!.label}, run ${rep}`
    push(
      await ctx.attempt(upper, () =>
        vigiaRun(ctx, BATCH[1]!, rep, { backend: 'sqlite', load: 'identical' }),
      ),
      upper,
    )
  }
}
