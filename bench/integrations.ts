// `bun bench/integrations.ts [--quick]`: the figures of issue 15, each beside its reference in the same run:
// webhook throughput to a local receiver (deliveries/s, p99 event→delivery at a steady rate) with 1 and 10
// endpoints; ingest with one active webhook against none; the cost of the token revocation check.
// Vigía runs as its own process (fresh SQLite file per run); the receiver and the load run here.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { loadConfig } from '../src/config'
import { openDatabase } from '../src/db'
import { tokenRevocations } from '../src/db/schema'
import { createLogger } from '../src/lib/logger'
import { createRevocations } from '../src/modules/auth/revocations'
import { createTokens } from '../src/modules/auth/tokens'
import { cpuSeconds } from './lib/procfs'

const ROOT = resolve(import.meta.dir, '..')
const PASSWORD = 'bench-admin-password'

interface Vigia {
  pid: number
  base: string
  auth: Record<string, string>
  post(path: string, body: unknown): Promise<any>
  stop(): Promise<void>
}

async function startVigia(env: Record<string, string> = {}): Promise<Vigia> {
  const dir = mkdtempSync(join(tmpdir(), 'vigia-bench-integ-'))
  const profile = process.env.PROFILE_DIR
  const cmd = profile
    ? ['bun', '--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${profile}`, 'src/index.ts']
    : ['bun', 'src/index.ts']
  const proc = Bun.spawn(cmd, {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? dir,
      PORT: '0',
      HOST: '127.0.0.1',
      NODE_ENV: 'production',
      DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`,
      LOG_LEVEL: 'info',
      ADMIN_PASSWORD: PASSWORD,
      JWT_SECRET: 'benchmark-secret-benchmark-secret-0123',
      ...env,
    },
    stdout: 'ignore',
    stderr: 'pipe',
  })
  const reader = proc.stderr.getReader()
  let log = ''
  while (!/listening on (http:\/\/\S+)/.test(log)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`Vigía exited:\n${log}`)
    log += new TextDecoder().decode(value)
  }
  void (async () => {
    for (;;) if ((await reader.read()).done) return
  })()
  const base = log.match(/listening on (http:\/\/\S+)/)![1]!
  const login = await fetch(`${base}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'admin', password: PASSWORD }),
  })
  const auth = { authorization: `Bearer ${((await login.json()) as any).access_token}` }
  const post = async (path: string, body: unknown) => {
    const res = await fetch(`${base}${path}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...auth },
      body: JSON.stringify(body),
    })
    if (res.status >= 300) throw new Error(`${path}: ${res.status} ${await res.text()}`)
    return res.json()
  }
  return {
    pid: proc.pid,
    base,
    auth,
    post,
    async stop() {
      proc.kill('SIGTERM')
      await proc.exited
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A receiver that answers 200 and notes when each delivery arrived and what event time it carried. */
function startReceiver() {
  const arrivals: { at: number; eventAt: number }[] = []
  let waiter: { count: number; resolve: () => void } | undefined
  const server = Bun.serve({
    port: 0,
    hostname: '127.0.0.1',
    async fetch(req) {
      const frame = (await req.json()) as { timestamp: string }
      arrivals.push({ at: Date.now(), eventAt: Date.parse(frame.timestamp) })
      if (waiter && arrivals.length >= waiter.count) waiter.resolve()
      return new Response('ok')
    },
  })
  return {
    url: `http://127.0.0.1:${server.port}`,
    arrivals,
    until(count: number) {
      if (arrivals.length >= count) return Promise.resolve()
      return new Promise<void>((resolve) => (waiter = { count, resolve }))
    },
    stop: () => server.stop(true),
  }
}

const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN
}
const median = (values: number[]) => percentile(values, 50)

/** Deliveries/s for a burst of `events` readings to `endpoints` webhooks, and p50/p99 at a steady `rate`. */
export async function webhookThroughput(
  endpoints: number,
  events: number,
  rate: number,
  seconds: number,
) {
  const vigia = await startVigia()
  const receiver = startReceiver()
  try {
    const sensor = (await vigia.post('/api/v1/sensors', { tipo: 't', modelo: 'm' })).id
    for (let i = 0; i < endpoints; i++)
      await vigia.post('/api/v1/webhooks', {
        url: `${receiver.url}/${i}`,
        channels: [`readings:${sensor}`],
      })
    const started = Date.now()
    for (let sent = 0; sent < events; sent += 500)
      await vigia.post(
        '/api/v1/readings/batch',
        Array.from({ length: Math.min(500, events - sent) }, (_, i) => ({
          sensor_id: sensor,
          temperatura: i,
        })),
      )
    await receiver.until(events * endpoints)
    const throughput = (events * endpoints) / ((Date.now() - started) / 1000)

    const from = receiver.arrivals.length
    const total = Math.round(rate * seconds)
    const tick = 1000 / rate
    const t0 = performance.now()
    for (let i = 0; i < total; i++) {
      const due = t0 + i * tick - performance.now()
      if (due > 0) await Bun.sleep(due)
      void vigia.post('/api/v1/readings', { sensor_id: sensor, temperatura: i })
    }
    await receiver.until(from + total * endpoints)
    const latencies = receiver.arrivals.slice(from).map((a) => a.at - a.eventAt)
    return {
      endpoints,
      deliveries_per_s: Math.round(throughput),
      latency_ms: { rate, p50: percentile(latencies, 50), p99: percentile(latencies, 99) },
    }
  } finally {
    receiver.stop()
    await vigia.stop()
  }
}

/**
 * One ingest run on a fresh server: `count` single POSTs, `concurrency` in flight. Answers readings/s
 * and the server's CPU time per reading (user + system; with a matching webhook, until every delivery
 * is in), which a busy machine disturbs less than wall-clock throughput.
 */
export async function ingest(
  setup: 'none' | 'non-matching' | 'matching',
  concurrency: number,
  count: number,
) {
  const vigia = await startVigia()
  const receiver = startReceiver()
  try {
    const sensor = (await vigia.post('/api/v1/sensors', { tipo: 't', modelo: 'm' })).id
    // The usual alarm hook: anomalies only (readings pass by it); or one that takes every reading.
    if (setup === 'non-matching')
      await vigia.post('/api/v1/webhooks', { url: receiver.url, channels: ['anomalies'] })
    if (setup === 'matching')
      await vigia.post('/api/v1/webhooks', { url: receiver.url, channels: [`readings:${sensor}`] })
    const run = async (n: number) => {
      let next = 0
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < n) {
            const i = next++
            await vigia.post('/api/v1/readings', { sensor_id: sensor, temperatura: (i % 50) + 0.5 })
          }
        }),
      )
    }
    await run(Math.min(500, count / 5))
    if (setup === 'matching') await receiver.until(Math.min(500, count / 5))
    const cpu0 = cpuSeconds(vigia.pid)
    const t0 = performance.now()
    await run(count)
    const wall = (performance.now() - t0) / 1000
    if (setup === 'matching') await receiver.until(Math.min(500, count / 5) + count)
    const cpu = cpuSeconds(vigia.pid) - cpu0
    return { perSecond: count / wall, cpuUs: (cpu * 1e6) / count }
  } finally {
    receiver.stop()
    await vigia.stop()
  }
}

/** Ingest with one active webhook against none, runs interleaved, medians of `reps`. */
export async function ingestCost(reps: number, count: number, concurrency = 32) {
  const setups = ['none', 'non-matching', 'matching'] as const
  const runs = Object.fromEntries(
    setups.map((s) => [s, [] as { perSecond: number; cpuUs: number }[]]),
  )
  for (let r = 0; r < reps; r++)
    for (const setup of setups) runs[setup]!.push(await ingest(setup, concurrency, count))
  const cpu = (setup: string) => median(runs[setup]!.map((r) => r.cpuUs))
  const rate = (setup: string) => Math.round(median(runs[setup]!.map((r) => r.perSecond)))
  return {
    concurrency,
    readings: count,
    readings_per_s: {
      none: rate('none'),
      one_webhook_not_matching: rate('non-matching'),
      one_webhook_matching_every_reading: rate('matching'),
    },
    server_cpu_us_per_reading: {
      none: +cpu('none').toFixed(1),
      one_webhook_not_matching: +cpu('non-matching').toFixed(1),
      one_webhook_matching_every_reading: +cpu('matching').toFixed(1),
    },
    cost_ratio_cpu: {
      one_webhook_not_matching: +(cpu('non-matching') / cpu('none')).toFixed(3),
      one_webhook_matching_every_reading: +(cpu('matching') / cpu('none')).toFixed(3),
    },
  }
}

/** ns per token check: verify with the revocation lookup (10,000 revoked tokens, 1,000 users) against without. */
export async function revocationCost(iterations: number) {
  const config = loadConfig({
    JWT_SECRET: 'benchmark-secret-benchmark-secret-0123',
    LOG_LEVEL: 'silent',
  })
  const db = await openDatabase({ kind: 'sqlite', path: ':memory:', url: 'sqlite::memory:' })
  const revocations = createRevocations(db, createLogger('silent'), 3600)
  await db.transaction(async (tx) => {
    const exp = Math.floor(Date.now() / 1000) + 3600
    for (let i = 0; i < 10_000; i++)
      await tx
        .insert(tokenRevocations)
        .values({ jti: `revoked-${i}`, expires_at: exp * 1000, created_at: 0 })
    for (let i = 0; i < 1000; i++) await revocations.revokeUser(tx, `user-${i}`)
  })
  await revocations.refresh()
  const plain = createTokens(config)
  const checked = createTokens(config, revocations)
  const token = await plain.sign({ username: 'ana', role: 'viewer', channels: ['*'] })
  const claims = (await plain.verify(token))!
  const time = async (fn: () => unknown) => {
    for (let i = 0; i < 1000; i++) await fn()
    const t = performance.now()
    for (let i = 0; i < iterations; i++) await fn()
    return ((performance.now() - t) * 1e6) / iterations
  }
  // The lookup is synchronous: timed in a plain loop (an await per call would cost more than it).
  let revoked = 0
  for (let i = 0; i < 100_000; i++) if (revocations.isRevoked(claims)) revoked += 1
  const t = performance.now()
  for (let i = 0; i < iterations * 10; i++) if (revocations.isRevoked(claims)) revoked += 1
  const lookupNs = ((performance.now() - t) * 1e6) / (iterations * 10)
  if (revoked > 0) throw new Error('the benchmark token should not be revoked')
  const without = await time(() => plain.verify(token))
  const withCheck = await time(() => checked.verify(token))
  await db.close()
  return {
    held: revocations.size(),
    lookup_ns: +lookupNs.toFixed(1),
    verify_ns: {
      without_revocation_check: Math.round(without),
      with_revocation_check: Math.round(withCheck),
    },
  }
}

if (import.meta.main) {
  const { values } = parseArgs({ options: { quick: { type: 'boolean', default: false } } })
  const quick = values.quick
  const results = {
    revocation: await revocationCost(quick ? 20_000 : 200_000),
    webhooks: [
      await webhookThroughput(1, quick ? 1000 : 5000, 100, quick ? 2 : 5),
      await webhookThroughput(10, quick ? 200 : 1000, 20, quick ? 2 : 5),
    ],
    ingest: await ingestCost(quick ? 1 : 3, quick ? 3000 : 10_000),
  }
  console.log(JSON.stringify(results, null, 2))
}
