// The realtime path: fan-out to many subscribers (throughput, latency, idle memory per connection), the
// realtime path at the limit (server CPU per delivery, Vigía against the bare Bun.serve server, round by
// round) and recovery (a client resuming with `since`).
import type { Ctx } from '../lib/context'
import { LOAD } from '../lib/context'
import { merge, summarize } from '../lib/histogram'
import { clearRelay, pids, setRelay, split, sum, workers, type Worker } from '../lib/pool'
import { cpuByThread, cpuPrecise, cpuWindow, rssKb } from '../lib/procfs'
import {
  now,
  type ConnectReply,
  type FinishReply,
  type Path,
  type ReplayReply,
  type SendReply,
} from '../lib/protocol'
import type { FanoutRun, PhaseResult, RealtimeRound, RecoveryRun } from '../lib/results'
import { post, startServer, TARGETS, type RunningServer, type Target } from '../lib/servers'

interface Fleet {
  server: RunningServer
  subscribers: Worker[]
  phase: number
}

async function connectSubscribers(fleet: Fleet, count: number, official = 0) {
  const { server } = fleet
  const parts = split(count, 2)
  const active = workers.slice(0, 2).filter((_, i) => parts[i]! > 0)
  const start = now()
  const replies = await Promise.all(
    active.map((w, i) =>
      w.call<ConnectReply>({
        t: 'connect',
        url: server.wsUrl('readings'),
        proto: TARGETS[server.target].proto,
        count: parts[i]!,
        concurrency: LOAD.connectConcurrency,
        official: i === 0 ? official : 0,
      }),
    ),
  )
  fleet.subscribers = active
  const ms = now() - start
  return { ms, failed: sum(replies.map((r) => r.failed)), error: replies.find((r) => r.error) }
}

async function closeSubscribers(fleet: Fleet) {
  await Promise.all(fleet.subscribers.map((w) => w.call({ t: 'close' })))
  fleet.subscribers = []
}

/** One fan-out phase: events through `path`, every subscriber counted and timed. */
async function fanoutPhase(
  fleet: Fleet,
  path: Path,
  mode: 'window' | 'rate',
  durationMs: number,
  rate = 0,
  limit?: number,
): Promise<PhaseResult & { serverCpu: number; threadsUsPerEvent: ThreadsPerEvent }> {
  const { server, subscribers } = fleet
  const sender = workers[2]!
  const phase = ++fleet.phase
  const base = now()
  await Promise.all(subscribers.map((w) => w.call({ t: 'expect', phase, base, kind: 'indexed' })))
  setRelay(phase, subscribers, sender)
  const cpu = cpuWindow(server.pid, pids())
  const threads0 = cpuByThread(server.pid)
  const cpu0 = cpuPrecise(threads0, server.pid)
  const sent = await sender.call<SendReply>({
    t: 'fanout',
    base: server.base,
    path,
    phase,
    phaseBase: base,
    mode,
    durationMs,
    window: LOAD.window,
    rate,
    concurrency: mode === 'window' ? LOAD.concurrency : 1024,
    limit,
  })
  const finished = await Promise.all(
    subscribers.map((w) =>
      w.call<FinishReply>({ t: 'finish', total: sent.ok, timeoutMs: LOAD.finishTimeoutMs }),
    ),
  )
  const threads = cpuByThread(server.pid)
  const serverCpu = cpuPrecise(threads, server.pid) - cpu0
  for (const [name, seconds] of threads) threads.set(name, seconds - (threads0.get(name) ?? 0))
  const cpuUse = cpu()
  clearRelay()
  const deliveries = sum(finished.map((f) => f.received))
  const last = Math.max(...finished.map((f) => f.last))
  const seconds = Math.max(last - sent.first, 1e-3) / 1000
  const latency = merge(finished.map((f) => f.hist))
  const http = merge([sent.hist])
  const result = {
    events: sent.ok,
    errors: sent.errors,
    error: sent.error,
    deliveries,
    expected: sent.ok * sum(finished.map((f) => f.sockets)),
    short: sum(finished.map((f) => f.short)),
    closed: sum(finished.map((f) => f.closed)),
    seconds,
    deliveriesPerSecond: deliveries / seconds,
    eventsPerSecond: sent.ok / seconds,
    latency: summarize(latency),
    http: summarize(http),
    behind: sent.behind,
    rate: mode === 'rate' ? rate : undefined,
    cpu: cpuUse,
    serverCpu,
    threadsUsPerEvent: threadsPerEvent(threads, sent.ok),
  }
  latency.destroy()
  http.destroy()
  return result
}

/** Server CPU per event by thread kind: the event loop, the JIT's compiler threads, everything else. */
type ThreadsPerEvent = NonNullable<RealtimeRound['threadsUsPerEvent']>

function threadsPerEvent(threads: Map<string, number>, events: number): ThreadsPerEvent {
  const us = (seconds: number) => (seconds / Math.max(events, 1)) * 1e6
  let other = 0
  for (const [name, seconds] of threads)
    if (name !== 'bun' && name !== 'JITWorker') other += seconds
  return {
    loop: us(threads.get('bun') ?? 0),
    jit: us(threads.get('JITWorker') ?? 0),
    other: us(other),
  }
}

async function createSensors(server: RunningServer, count: number) {
  if (server.target !== 'vigia') return
  for (let i = 0; i < count; i++)
    await post(server.base, '/api/v1/sensors', { tipo: 'temperatura', modelo: 'DHT22' })
}

const latencyRate = (size: number, deliveries = LOAD.deliveriesPerSecond) =>
  Math.max(1, Math.min(LOAD.maxRate, Math.floor(deliveries / size)))

/**
 * The same warm-up for every server, before any baseline: sensors, then readings to 20 subscribers for
 * the plan's warm-up time.
 */
async function warmUp(ctx: Ctx, fleet: Fleet) {
  await createSensors(fleet.server, 8)
  await connectSubscribers(fleet, 20)
  await fanoutPhase(fleet, 'readings', 'window', ctx.plan.warmupMs)
  await closeSubscribers(fleet)
  await Bun.sleep(ctx.plan.settleMs)
}

/** A warm-up chunk's compiler-thread CPU under this, µs per event, twice in a row: compiled. */
const JIT_QUIET_US = 1

/**
 * A realtime round's warm-up: the plan's events, then chunks of a quarter of them until JSC's compiler
 * threads have used under JIT_QUIET_US per event over two chunks in a row (or the plan's most), so
 * that the round measures each server's compiled code and not its compilation. Answers the events sent.
 */
async function warmUntilCompiled(ctx: Ctx, fleet: Fleet): Promise<number> {
  const { plan } = ctx
  const chunk = Math.max(1, Math.round(plan.realtimeWarmupEvents / 4))
  // Each phase sends as its own sensor (sensor_id = phase): the chunks' and the round's phases.
  const chunks = Math.ceil((plan.realtimeWarmupMaxEvents - plan.realtimeWarmupEvents) / chunk)
  await createSensors(fleet.server, 8 + chunks)
  await connectSubscribers(fleet, 20)
  await fanoutPhase(fleet, 'readings', 'window', 120_000, 0, plan.realtimeWarmupEvents)
  let events = plan.realtimeWarmupEvents
  let quiet = 0
  while (quiet < 2 && events + chunk <= plan.realtimeWarmupMaxEvents) {
    const { threadsUsPerEvent } = await fanoutPhase(fleet, 'readings', 'window', 120_000, 0, chunk)
    events += chunk
    quiet = threadsUsPerEvent.jit < JIT_QUIET_US ? quiet + 1 : 0
  }
  await closeSubscribers(fleet)
  await Bun.sleep(plan.settleMs)
  return events
}

export async function fanoutRun(
  ctx: Ctx,
  target: Target,
  size: number,
  rep: number,
): Promise<FanoutRun> {
  const { plan } = ctx
  const server = await startServer(target, size + 2000, { profileDir: ctx.profile })
  const fleet: Fleet = { server, subscribers: [], phase: 0 }
  try {
    await warmUp(ctx, fleet)
    const beforeKb = rssKb(server.pid)

    // Memory per idle socket is the growth from a tenth of them to all, over the other nine tenths: the
    // first tenth's allocations set off the collection of the warm-up's garbage, which measured from
    // before any socket made a server's RSS grow by nothing (or shrink) while 10,000 connected.
    const tenth = Math.max(1, Math.floor(size / 10))
    const first = await connectSubscribers(fleet, tenth, target === 'socketio' ? 1 : 0)
    await Bun.sleep(plan.settleMs)
    const tenthKb = rssKb(server.pid)
    const rest = await connectSubscribers(fleet, size - tenth)
    const connected = { ms: first.ms + rest.ms, failed: first.failed + rest.failed }
    if (connected.failed > 0)
      ctx.log(`  ${connected.failed} of ${size} subscribers failed to connect`)
    await Bun.sleep(plan.settleMs)
    const afterKb = rssKb(server.pid)

    const paths: Path[] = target === 'vigia' ? ['readings', 'test-event'] : ['readings']
    const results: FanoutRun['paths'] = []
    for (const path of paths) {
      await fanoutPhase(fleet, path, 'window', plan.warmupMs)
      const throughput = await fanoutPhase(fleet, path, 'window', plan.throughputMs)
      const latency = await fanoutPhase(fleet, path, 'rate', plan.latencyMs, latencyRate(size))
      const light = await fanoutPhase(
        fleet,
        path,
        'rate',
        plan.latencyMs,
        latencyRate(size, LOAD.lightDeliveriesPerSecond),
      )
      results.push({ path, throughput, latency, light })
      ctx.log(
        `  ${path}: ${Math.round(throughput.deliveriesPerSecond).toLocaleString()} deliveries/s` +
          ` (${throughput.deliveries}/${throughput.expected}); at ${latency.rate} ev/s p50 ${latency.latency.p50.toFixed(1)} ms` +
          ` p99 ${latency.latency.p99.toFixed(1)} ms (${latency.deliveries}/${latency.expected});` +
          ` at ${light.rate} ev/s p99 ${light.latency.p99.toFixed(1)} ms (${light.deliveries}/${light.expected})` +
          ` · server ${throughput.cpu.server}% gen ${throughput.cpu.generators.join('/')}% others ${throughput.cpu.others}%`,
      )
    }
    await closeSubscribers(fleet)
    return {
      target,
      size,
      rep,
      connect: {
        ms: connected.ms,
        perSecond: (size / connected.ms) * 1000,
        failed: connected.failed,
      },
      memory: { beforeKb, tenthKb, afterKb, perConnectionKb: (afterKb - tenthKb) / (size - tenth) },
      paths: results,
    }
  } finally {
    clearRelay()
    await closeSubscribers(fleet).catch(() => undefined)
    await server.stop()
  }
}

/**
 * One round at the limit: a fixed number of events through POST /readings to a fixed number of
 * subscribers, as fast as the window allows; the server's CPU time (every thread) per delivery.
 */
export async function realtimeRound(
  ctx: Ctx,
  target: 'vigia' | 'bun',
  round: number,
): Promise<RealtimeRound> {
  const { plan } = ctx
  const size = plan.realtimeSubscribers
  const server = await startServer(target, size + 2000, { profileDir: ctx.profile })
  const fleet: Fleet = { server, subscribers: [], phase: 0 }
  try {
    const warmup = await warmUntilCompiled(ctx, fleet)
    const connected = await connectSubscribers(fleet, size)
    if (connected.failed > 0) throw new Error(`${connected.failed} subscribers failed to connect`)
    await Bun.sleep(plan.settleMs)
    // A short burst first, so that the measured events do not pay for the 1,000 new sockets' first frames.
    await fanoutPhase(fleet, 'readings', 'window', plan.warmupMs, 0, plan.realtimeEvents / 10)
    const p = await fanoutPhase(fleet, 'readings', 'window', 120_000, 0, plan.realtimeEvents)
    await closeSubscribers(fleet)
    return {
      round,
      target,
      subscribers: size,
      events: p.events,
      deliveries: p.deliveries,
      expected: p.expected,
      seconds: p.seconds,
      serverCpu: p.serverCpu,
      cpuPerDeliveryUs: (p.serverCpu / p.deliveries) * 1e6,
      threadsUsPerEvent: p.threadsUsPerEvent,
      warmupEvents: warmup,
      verified:
        p.deliveries === p.expected &&
        p.events === plan.realtimeEvents &&
        p.short === 0 &&
        p.errors === 0,
    }
  } finally {
    clearRelay()
    await closeSubscribers(fleet).catch(() => undefined)
    await server.stop()
  }
}

export async function recoveryRun(ctx: Ctx, rep: number): Promise<RecoveryRun> {
  const { plan } = ctx
  const server = await startServer('vigia', 2000, { profileDir: ctx.profile })
  try {
    await createSensors(server, 1)
    const { event } = await post(server.base, '/api/v1/ws/test-event?channel=general&message=mark')
    const since = event.seq as number
    const events = plan.recoveryEvents
    for (let i = 0; i < events; i += 1000) {
      const n = Math.min(1000, events - i)
      await post(
        server.base,
        '/api/v1/readings/batch',
        new Array(n).fill({ sensor_id: 1, temperatura: 20, humedad: 50 }),
      )
    }
    await Bun.sleep(plan.settleMs)
    const rssBeforeKb = rssKb(server.pid)
    let rssPeakKb = rssBeforeKb
    const sampler = setInterval(() => (rssPeakKb = Math.max(rssPeakKb, rssKb(server.pid))), 5)
    const reply = await workers[0]!.call<ReplayReply>({
      t: 'replay',
      url: server.wsUrl('readings', since),
      expect: events,
      timeoutMs: 60_000,
    })
    clearInterval(sampler)
    rssPeakKb = Math.max(rssPeakKb, rssKb(server.pid))
    await Bun.sleep(200)
    return {
      rep,
      events,
      ms: reply.ms,
      connectedMs: reply.connectedMs,
      perSecond: (reply.count / reply.ms) * 1000,
      count: reply.count,
      inOrder: reply.inOrder,
      recovered: reply.recovered,
      rssBeforeKb,
      rssPeakKb,
      rssAfterKb: rssKb(server.pid),
      error: reply.error,
    }
  } finally {
    await server.stop()
  }
}
