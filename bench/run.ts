// `bun run bench [--quick]`: starts each server as its own process, drives it from separate load-generator
// processes (bench/worker.ts), and writes BENCHMARKS.md, bench/latency.svg and bench/results.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { parseArgs } from 'node:util'
import { merge, summarize } from './lib/histogram'
import { cpuWindow, loadAverage, machine, openFileLimit, rssKb } from './lib/procfs'
import {
  now,
  type Command,
  type ConnectReply,
  type FinishReply,
  type Path,
  type ReplayReply,
  type SendReply,
  type WatermarkNote,
} from './lib/protocol'
import { renderChart, renderMarkdown, writeMarkdown } from './lib/report'
import type { FanoutRun, IngestRun, PhaseResult, RecoveryRun, Results } from './lib/results'
import { post, ROOT, startServer, TARGETS, type RunningServer, type Target } from './lib/servers'

const PLANS = {
  full: {
    sizes: [100, 1000, 3000, 10000],
    reps: 5,
    warmupMs: 500,
    throughputMs: 3000,
    latencyMs: 3000,
    ingestMs: 3000,
    ingestReps: 5,
    recoveryEvents: 10_000,
    recoveryReps: 5,
    settleMs: 1000,
  },
  quick: {
    sizes: [1000, 10000],
    reps: 1,
    warmupMs: 200,
    throughputMs: 1000,
    latencyMs: 1000,
    ingestMs: 1000,
    ingestReps: 1,
    recoveryEvents: 10_000,
    recoveryReps: 1,
    settleMs: 500,
  },
  /** Harness check only (test/bench.test.ts): every scenario on toy sizes. */
  tiny: {
    sizes: [10, 40],
    reps: 1,
    warmupMs: 100,
    throughputMs: 300,
    latencyMs: 300,
    ingestMs: 300,
    ingestReps: 1,
    recoveryEvents: 300,
    recoveryReps: 1,
    settleMs: 100,
  },
}

/** Shared by every plan: how hard the generator pushes. */
const LOAD = {
  /** Window mode: events sent but not yet delivered to every subscriber. */
  window: 64,
  /** Window mode: HTTP requests in flight. */
  concurrency: 16,
  /** Latency runs: 200 events/s, or fewer above 1,000 subscribers so deliveries stay at 200k/s. */
  maxRate: 200,
  deliveriesPerSecond: 200_000,
  /** Light-load latency runs: at most 50k deliveries/s, which leaves the two cores room. */
  lightDeliveriesPerSecond: 50_000,
  connectConcurrency: 100,
  finishTimeoutMs: 20_000,
}

const INGEST = [
  { label: 'single POST, 1 sender', batch: 1, concurrency: 1 },
  { label: 'single POST, 16 senders', batch: 1, concurrency: 16 },
  { label: 'single POST, 64 senders', batch: 1, concurrency: 64 },
  { label: 'batch of 100, 4 senders', batch: 100, concurrency: 4 },
  { label: 'batch of 1,000, 4 senders', batch: 1000, concurrency: 4 },
]

const SCENARIOS = ['fanout', 'ingest', 'recovery'] as const

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    reps: { type: 'string' },
    sizes: { type: 'string' },
    /** Vigía runs under Bun's CPU profiler; profiles land in .tmp/bench-profile. */
    profile: { type: 'boolean', default: false },
    /** Re-renders the report from a results.json without measuring. */
    render: { type: 'string' },
  },
})
const mode = args.tiny ? 'tiny' : args.quick ? 'quick' : 'full'
const plan = { ...PLANS[mode] }
if (args.reps) plan.reps = plan.ingestReps = plan.recoveryReps = Number(args.reps)
if (args.sizes) plan.sizes = args.sizes.split(',').map(Number)
const profile = args.profile ? join(ROOT, '.tmp', 'bench-profile') : undefined
const only = new Set(args.only ? args.only.split(',') : SCENARIOS)

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`)
const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)

/** One load-generator process, steered over IPC. */
class Worker {
  private nextId = 1
  private readonly pending = new Map<number, (reply: any) => void>()
  private readonly proc: ReturnType<typeof Bun.spawn>
  onNote: (note: WatermarkNote) => void = () => {}
  readonly up: Promise<void>

  constructor() {
    let up!: () => void
    this.up = new Promise((resolve) => (up = resolve))
    this.proc = Bun.spawn(['bun', 'bench/worker.ts'], {
      cwd: ROOT,
      stdout: 'inherit',
      stderr: 'inherit',
      ipc: (message: any) => {
        if (message.t === 'up') return up()
        if (message.t === 'wm') return this.onNote(message)
        const resolve = this.pending.get(message.id)
        this.pending.delete(message.id)
        resolve?.(message)
      },
    })
  }

  get pid() {
    return this.proc.pid
  }

  call<R>(command: Command): Promise<R> {
    const id = this.nextId++
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, (reply) =>
        reply.error ? reject(new Error(`worker: ${reply.error}`)) : resolve(reply),
      )
      this.proc.send({ id, ...command })
    })
  }

  tell(command: Command) {
    this.proc.send({ id: 0, ...command })
  }

  stop() {
    this.proc.kill()
    return this.proc.exited
  }
}

/** Measures each worker's clock against ours by ping-pong and hands it the correction. */
async function calibrate(worker: Worker): Promise<number> {
  let best = { rtt: Infinity, offset: 0 }
  for (let i = 0; i < 50; i++) {
    const t1 = now()
    const { at } = await worker.call<{ at: number }>({ t: 'clock' })
    const t2 = now()
    if (t2 - t1 < best.rtt) best = { rtt: t2 - t1, offset: at - (t1 + t2) / 2 }
  }
  await worker.call({ t: 'offset', ms: best.offset })
  return best.offset
}

const workers: Worker[] = []
const pids = () => workers.map((w) => w.pid)

/** Splits n as evenly as possible over k parts. */
const split = (n: number, k: number) =>
  Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0))

let relay: { phase: number; done: Map<Worker, number>; sent: number; sender: Worker } | undefined

function onNote(worker: Worker, note: WatermarkNote) {
  if (!relay || note.phase !== relay.phase || !relay.done.has(worker)) return
  relay.done.set(worker, note.done)
  const low = Math.min(...relay.done.values())
  if (low > relay.sent) {
    relay.sent = low
    relay.sender.tell({ t: 'watermark', done: low })
  }
}

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
): Promise<PhaseResult> {
  const { server, subscribers } = fleet
  const sender = workers[2]!
  const phase = ++fleet.phase
  const base = now()
  await Promise.all(subscribers.map((w) => w.call({ t: 'expect', phase, base, kind: 'indexed' })))
  relay = { phase, done: new Map(subscribers.map((w) => [w, 0])), sent: 0, sender }
  const cpu = cpuWindow(server.pid, pids())
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
  })
  const finished = await Promise.all(
    subscribers.map((w) =>
      w.call<FinishReply>({ t: 'finish', total: sent.ok, timeoutMs: LOAD.finishTimeoutMs }),
    ),
  )
  const cpuUse = cpu()
  relay = undefined
  const deliveries = sum(finished.map((f) => f.received))
  const last = Math.max(...finished.map((f) => f.last))
  const seconds = Math.max(last - sent.first, 1e-3) / 1000
  const latency = merge(finished.map((f) => f.hist))
  const http = merge([sent.hist])
  const result: PhaseResult = {
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
  }
  latency.destroy()
  http.destroy()
  return result
}

async function createSensors(server: RunningServer, count: number) {
  if (server.target !== 'vigia') return
  for (let i = 0; i < count; i++)
    await post(server.base, '/api/v1/sensors', { tipo: 'temperatura', modelo: 'DHT22' })
}

const latencyRate = (size: number, deliveries = LOAD.deliveriesPerSecond) =>
  Math.max(1, Math.min(LOAD.maxRate, Math.floor(deliveries / size)))

async function fanoutRun(target: Target, size: number, rep: number): Promise<FanoutRun> {
  const server = await startServer(target, size + 2000, profile)
  const fleet: Fleet = { server, subscribers: [], phase: 0 }
  try {
    await createSensors(server, 8)
    // The same warm-up for every server, before the memory baseline: a few sockets and events.
    await connectSubscribers(fleet, 20)
    await fanoutPhase(fleet, 'readings', 'window', plan.warmupMs)
    await closeSubscribers(fleet)
    await Bun.sleep(plan.settleMs)
    const beforeKb = rssKb(server.pid)

    const connected = await connectSubscribers(fleet, size, target === 'socketio' ? 1 : 0)
    if (connected.failed > 0) log(`  ${connected.failed} of ${size} subscribers failed to connect`)
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
      log(
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
      memory: { beforeKb, afterKb, perConnectionKb: (afterKb - beforeKb) / size },
      paths: results,
    }
  } finally {
    relay = undefined
    await closeSubscribers(fleet).catch(() => undefined)
    await server.stop()
  }
}

async function ingestRun(config: (typeof INGEST)[number], rep: number): Promise<IngestRun> {
  const server = await startServer('vigia', 2000, profile)
  const subscriber = workers[0]!
  const senders = config.concurrency === 1 ? [workers[1]!] : [workers[1]!, workers[2]!]
  const shares = split(config.concurrency, senders.length)
  try {
    await createSensors(server, 2)
    const c = await subscriber.call<ConnectReply>({
      t: 'connect',
      url: server.wsUrl('readings'),
      proto: 'ws',
      count: 1,
      concurrency: 1,
      official: 0,
    })
    if (c.ready !== 1) throw new Error('the live subscriber could not connect')
    const phase = async (sensorId: number, durationMs: number) => {
      const base = now()
      await subscriber.call({ t: 'expect', phase: sensorId, base, kind: 'count' })
      const cpu = cpuWindow(server.pid, pids())
      const replies = await Promise.all(
        senders.map((w, i) =>
          w.call<SendReply>({
            t: 'ingest',
            base: server.base,
            batch: config.batch,
            concurrency: shares[i]!,
            durationMs,
            sensorId,
            phaseBase: base,
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
    await phase(1, plan.warmupMs)
    const { replies, readings, fin, cpu } = await phase(2, plan.ingestMs)
    const first = Math.min(...replies.map((r) => r.first))
    const lastAnswer = Math.max(...replies.map((r) => r.last))
    const seconds = Math.max(fin.last - first, 1e-3) / 1000
    const errors = sum(replies.map((r) => r.errors))
    const request = merge(replies.map((r) => r.hist))
    const delivery = merge([fin.hist])
    const run: IngestRun = {
      label: config.label,
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
      delivery: summarize(delivery),
      cpu,
    }
    request.destroy()
    delivery.destroy()
    await subscriber.call({ t: 'close' })
    return run
  } finally {
    await subscriber.call({ t: 'close' }).catch(() => undefined)
    await server.stop()
  }
}

async function recoveryRun(rep: number): Promise<RecoveryRun> {
  const server = await startServer('vigia', 2000, profile)
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

function gitState() {
  const run = (cmd: string[]) => Bun.spawnSync(cmd, { cwd: ROOT }).stdout.toString().trim()
  return {
    commit: run(['git', 'rev-parse', '--short', 'HEAD']) || 'unknown',
    // The code measured, not the files a run writes (bench/results.json, bench/latency.svg).
    dirty:
      run([
        'git',
        'status',
        '--porcelain',
        '--',
        'src',
        'bench',
        'package.json',
        ':!bench/results.json',
        ':!bench/latency.svg',
      ]) !== '',
  }
}

function packageVersion(name: string) {
  try {
    return JSON.parse(readFileSync(join(ROOT, 'node_modules', name, 'package.json'), 'utf8'))
      .version as string
  } catch {
    return 'unknown'
  }
}

async function main() {
  const started = Date.now()
  const files = openFileLimit()
  const needed = Math.max(...plan.sizes) + 2000
  if (files.hard < needed)
    throw new Error(
      `The open-file limit (hard ${files.hard}) is below the ${needed} that ${Math.max(...plan.sizes)} subscribers need; raise it (ulimit -Hn) or pass --sizes.`,
    )
  for (let i = 0; i < 3; i++) {
    const worker = new Worker()
    worker.onNote = (note) => onNote(worker, note)
    workers.push(worker)
  }
  await Promise.all(workers.map((w) => w.up))
  const skews = await Promise.all(workers.map(calibrate))
  const results: Results = {
    meta: {
      mode,
      command: `bun run bench${Bun.argv.slice(2).length ? ` ${Bun.argv.slice(2).join(' ')}` : ''}`,
      date: new Date().toISOString(),
      ...gitState(),
      seconds: 0,
      machine: machine(),
      versions: {
        bun: Bun.version,
        node: Bun.spawnSync(['node', '--version']).stdout.toString().trim(),
        elysia: packageVersion('elysia'),
        'socket.io': packageVersion('socket.io'),
      },
      load: { before: loadAverage(), after: [] },
      clockSkewMs: Math.max(...skews.map(Math.abs)),
      openFiles: files.hard,
      plan: { ...plan, ...LOAD },
    },
    fanout: [],
    ingest: [],
    recovery: [],
    failures: [],
  }
  log(
    `${mode} run: ${results.meta.machine.cpu}, ${results.meta.machine.cores} cores; clocks agree within ${(results.meta.clockSkewMs * 1000).toFixed(1)} µs`,
  )

  /** A run that fails is logged and listed in the report; the others go on. */
  const attempt = async <T>(what: string, run: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await run()
    } catch (error) {
      log(`  failed: ${what}: ${String(error)}`)
      results.failures.push({ what, error: String(error).slice(0, 300) })
      return undefined
    } finally {
      relay = undefined
      // A checkpoint, so that a run cut short still leaves what it measured.
      mkdirSync(join(ROOT, '.tmp'), { recursive: true })
      writeFileSync(join(ROOT, '.tmp', `bench-${mode}-partial.json`), JSON.stringify(results))
    }
  }

  if (only.has('fanout'))
    for (const size of plan.sizes)
      for (let rep = 1; rep <= plan.reps; rep++)
        for (const target of Object.keys(TARGETS) as Target[]) {
          const what = `fan-out: ${TARGETS[target].label}, ${size} subscribers, run ${rep}/${plan.reps}`
          log(what)
          const run = await attempt(what, () => fanoutRun(target, size, rep))
          if (run) results.fanout.push(run)
        }

  if (only.has('ingest'))
    for (let rep = 1; rep <= plan.ingestReps; rep++)
      for (const config of INGEST) {
        const what = `ingest: ${config.label}, run ${rep}`
        const run = await attempt(what, () => ingestRun(config, rep))
        if (!run) continue
        log(
          `${what}: ${Math.round(run.perSecond).toLocaleString()} readings/s` +
            ` (${run.delivered}/${run.readings} at the subscriber${run.error ? `, ${run.errors} errors: ${run.error}` : ''})`,
        )
        results.ingest.push(run)
      }

  if (only.has('recovery'))
    for (let rep = 1; rep <= plan.recoveryReps; rep++) {
      const run = await attempt(`recovery, run ${rep}`, () => recoveryRun(rep))
      if (!run) continue
      log(
        `recovery, run ${rep}: ${run.count} events in ${run.ms.toFixed(0)} ms, RSS +${run.rssPeakKb - run.rssBeforeKb} kB at peak`,
      )
      results.recovery.push(run)
    }

  results.meta.load.after = loadAverage()
  results.meta.seconds = Math.round((Date.now() - started) / 1000)

  write(results)
}

/** Writes results.json, the chart and the generated section of BENCHMARKS.md. */
function write(results: Results, fromFile?: string) {
  const intoRepo = results.meta.mode === 'full' && !args.out
  const outDir =
    args.out ??
    (intoRepo
      ? ROOT
      : fromFile
        ? dirname(fromFile)
        : join(ROOT, '.tmp', `bench-${results.meta.mode}`))
  mkdirSync(outDir, { recursive: true })
  const chartPath = join(intoRepo ? join(ROOT, 'bench') : outDir, 'latency.svg')
  const resultsPath = fromFile ?? join(intoRepo ? join(ROOT, 'bench') : outDir, 'results.json')
  const markdownPath = join(outDir, 'BENCHMARKS.md')
  if (!fromFile) writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(chartPath, renderChart(results))
  const section = renderMarkdown(results, relative(outDir, chartPath))
  writeMarkdown(markdownPath, section)
  process.stdout.write(`${section}\n`)
  log(
    `wrote ${relative(ROOT, markdownPath) || markdownPath}, ${relative(ROOT, chartPath)}${fromFile ? '' : `, ${relative(ROOT, resultsPath)}`}${results.meta.seconds ? ` in ${results.meta.seconds} s` : ''}`,
  )
}

try {
  if (args.render) {
    const results = JSON.parse(readFileSync(args.render, 'utf8')) as Results
    write(results, args.render)
  } else await main()
} finally {
  await Promise.all(workers.map((w) => w.stop()))
}
