// Figures other issues ask for, each measured only when the build under test has the route (it says
// "not available in this build" otherwise): GET /api/v1/latest over a large fleet (issue 13), webhook
// delivery throughput to a local receiver and the ingest cost of an active webhook (issue 15).
import type { Ctx } from '../lib/context'
import { fleetBody, Lane, type VariableCount } from '../lib/fleet'
import { merge, newHistogram, summarize } from '../lib/histogram'
import { workers } from '../lib/pool'
import { now, type ReceiverStats } from '../lib/protocol'
import type { Timing, WebhookRun } from '../lib/results'
import { adminHeaders, call, startServer, type RunningServer } from '../lib/servers'
import { createFleet } from './fleet-setup'
import { BATCH, vigiaRun } from './ingest'

/** Routes the build serves, from its OpenAPI document ("GET /api/v1/latest", …). */
export async function routesOf(server: RunningServer): Promise<Set<string>> {
  const r = await call(server.base, 'GET', '/swagger/json')
  const out = new Set<string>()
  if (r.status !== 200 || typeof r.body !== 'object') return out
  for (const [path, ops] of Object.entries(r.body.paths ?? {}))
    for (const method of Object.keys(ops as object))
      // Elysia documents a module's root route with a trailing slash ("/api/v1/webhooks/").
      out.add(
        `${method.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1').replace(/(.)\/$/, '$1')}`,
      )
  return out
}

/** The routes each optional phase needs, probed once per run on a throwaway server. */
export async function probeRoutes(): Promise<Set<string>> {
  const server = await startServer('vigia', 2000)
  try {
    return await routesOf(server)
  } finally {
    await server.stop()
  }
}

export const NOT_AVAILABLE = (route: string) => `not available in this build (no ${route})`

/** Times `n` requests one after the other (after a few unmeasured ones). */
export async function timeRequests(
  label: string,
  n: number,
  request: (i: number) => Promise<{ status: number; ms: number; body: unknown }>,
): Promise<Timing> {
  for (let i = 0; i < Math.min(5, n); i++) await request(i)
  const h = newHistogram()
  let status = 0
  let rows: number | undefined
  for (let i = 0; i < n; i++) {
    const r = await request(i)
    if (r.status !== 200) status = r.status
    else status ||= 200
    if (Array.isArray(r.body)) rows = r.body.length
    h.recordValue(Math.max(1, Math.round(r.ms * 1000)))
  }
  const s = summarize(h)
  h.destroy()
  return { label, requests: n, status, p50: s.p50, p99: s.p99, max: s.max, rows }
}

/** Sends `count` readings of the fleet in batches of 1,000 (one lane over all sensors). */
export async function sendFleet(ctx: Ctx, server: RunningServer, sensors: number, count: number) {
  const fleet = ctx.results.meta.fleet!
  const ids = Array.from({ length: sensors }, (_, i) => i + 1)
  const lane = new Lane(ids, fleet.seed, fleet.startMs, fleet.vars as VariableCount)
  for (let sent = 0; sent < count; sent += 1000) {
    const batch = lane.take(Math.min(1000, count - sent)).map((r) => fleetBody(r, lane.count))
    const r = await call(server.base, 'POST', '/api/v1/readings/batch', batch)
    if (r.status !== 201)
      throw new Error(`a batch answered ${r.status}: ${JSON.stringify(r.body).slice(0, 200)}`)
  }
}

/** GET /api/v1/latest with a fleet of `latestSensors`, each with one reading (issue 13: < 50 ms). */
export async function latestPhase(ctx: Ctx, routes: Set<string>) {
  if (!routes.has('GET /api/v1/latest'))
    return ctx.skip('latest values', NOT_AVAILABLE('GET /api/v1/latest'))
  const n = ctx.plan.latestSensors
  const server = await startServer('vigia', 2000, { profileDir: ctx.profile })
  try {
    const t0 = now()
    await createFleet(server, n)
    await sendFleet(ctx, server, n, n)
    ctx.log(`  latest: ${n} sensors with a reading each in ${((now() - t0) / 1000).toFixed(1)} s`)
    const timing = await timeRequests(
      `GET /api/v1/latest, ${n.toLocaleString('en-US')} sensors`,
      ctx.plan.latestRequests,
      () => call(server.base, 'GET', '/api/v1/latest'),
    )
    ctx.results.latest.push(timing)
    ctx.log(
      `  ${timing.label}: p50 ${timing.p50.toFixed(1)} ms, p99 ${timing.p99.toFixed(1)} ms (${timing.rows} rows)`,
    )
    if (timing.rows !== undefined && timing.rows < n)
      throw new Error(`GET /api/v1/latest answered ${timing.rows} sensors of ${n}`)
  } finally {
    await server.stop()
  }
}

/** Creates `count` webhooks to the receiver (path /hook/<i>) and hands their secrets to it. */
async function webhooks(server: RunningServer, url: string, count: number, channels: string[]) {
  const secrets: string[] = []
  const admin = await adminHeaders(server.base)
  for (let i = 0; i < count; i++) {
    const r = await call(
      server.base,
      'POST',
      '/api/v1/webhooks',
      {
        url: `${url}/hook/${i}`,
        channels,
        event_types: channels.includes('anomalies') ? ['anomaly_detected'] : ['created'],
      },
      admin,
    )
    if (r.status !== 201)
      throw new Error(
        `POST /api/v1/webhooks answered ${r.status}: ${JSON.stringify(r.body).slice(0, 300)}`,
      )
    secrets.push(r.body.secret)
  }
  await workers[0]!.call({ t: 'receiver-secrets', secrets })
}

/** Deliveries/s and event → delivery latency with `endpoints` webhooks on every reading. */
async function webhookRun(ctx: Ctx, endpoints: number): Promise<WebhookRun> {
  const receiver = workers[0]!
  const { url } = await receiver.call<{ url: string }>({ t: 'receiver', endpoints })
  const server = await startServer('vigia', 2000, { profileDir: ctx.profile })
  try {
    const sensors = Math.min(ctx.plan.sensors, 100)
    await createFleet(server, sensors)
    await webhooks(server, url, endpoints, ['readings'])
    const events = ctx.plan.webhookEvents
    const expected = events * endpoints
    const start = now()
    await sendFleet(ctx, server, sensors, events)
    const deadline = Date.now() + 120_000
    let stats: ReceiverStats
    for (;;) {
      stats = await receiver.call<ReceiverStats>({ t: 'receiver-stats', reset: false })
      const got = stats.counts.reduce((a, b) => a + b, 0)
      if (got >= expected || Date.now() > deadline) break
      await Bun.sleep(50)
    }
    const deliveries = stats.counts.reduce((a, b) => a + b, 0)
    const seconds = Math.max(stats.last - start, 1e-3) / 1000
    const h = merge([stats.hist])
    const latency = summarize(h)
    h.destroy()
    return {
      endpoints,
      events,
      deliveries,
      expected,
      seconds,
      perSecond: deliveries / seconds,
      latency,
      signed: stats.badSignature === 0,
    }
  } finally {
    await server.stop()
    await receiver.call({ t: 'receiver-stop' })
  }
}

/** Webhook throughput with 1 and 10 endpoints, and batch ingest with one webhook active against none. */
export async function webhookPhases(ctx: Ctx, routes: Set<string>) {
  if (!routes.has('POST /api/v1/webhooks'))
    return ctx.skip('webhooks', NOT_AVAILABLE('POST /api/v1/webhooks'))
  for (const endpoints of [1, 10]) {
    const what = `webhooks: ${endpoints} endpoint(s), ${ctx.plan.webhookEvents} readings`
    const run = await ctx.attempt(what, () => webhookRun(ctx, endpoints))
    if (!run) continue
    ctx.results.webhooks.push(run)
    ctx.log(
      `${what}: ${Math.round(run.perSecond)} deliveries/s (${run.deliveries}/${run.expected}), p99 ${run.latency.p99.toFixed(1)} ms${run.signed ? '' : ', BAD SIGNATURES'}`,
    )
  }
  // Ingest with an active webhook, alternating with none: on anomalies (an alarm to a chat: few
  // deliveries, the cost is matching every event) and on readings (every reading delivered).
  const config = BATCH[1]!
  for (let rep = 1; rep <= ctx.plan.ingestReps; rep++)
    for (const webhook of ['none', 'anomalies', 'readings'] as const) {
      const what = `ingest with ${webhook === 'none' ? 'no webhook' : `a webhook on ${webhook}`}, ${config.label}, run ${rep}`
      const run = await ctx.attempt(what, async () => {
        if (webhook === 'none')
          return vigiaRun(ctx, config, rep, { backend: 'sqlite', load: 'fleet', webhook })
        const { url } = await workers[0]!.call<{ url: string }>({ t: 'receiver', endpoints: 1 })
        try {
          return await vigiaRun(ctx, config, rep, {
            backend: 'sqlite',
            load: 'fleet',
            webhook,
            before: async (server) => {
              const r = await call(
                server.base,
                'POST',
                '/api/v1/webhooks',
                { url: `${url}/hook/0`, channels: [webhook] },
                await adminHeaders(server.base),
              )
              if (r.status !== 201) throw new Error(`POST /api/v1/webhooks answered ${r.status}`)
            },
          })
        } finally {
          await workers[0]!.call({ t: 'receiver-stop' })
        }
      })
      if (!run) continue
      run.label = `${config.label}, ${webhook === 'none' ? 'no webhook' : `webhook on ${webhook}`}`
      ctx.results.ingest.push(run)
      ctx.log(`${what}: ${Math.round(run.perSecond).toLocaleString('en-US')} readings/s`)
    }
}
