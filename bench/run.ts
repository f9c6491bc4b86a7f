// `bun run bench [--quick]`: starts each server as its own process, drives it from separate load-generator
// processes (bench/worker.ts), measures the references in the same run, and writes BENCHMARKS.md,
// bench/latency.svg and bench/results.json. The phases live in bench/phases/.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { parseArgs } from 'node:util'
import { LOAD, PLANS, type Ctx, type Mode } from './lib/context'
import { startWorkers, stopWorkers } from './lib/pool'
import { loadAverage, machine, openFileLimit } from './lib/procfs'
import { renderChart, renderMarkdown, writeMarkdown } from './lib/report'
import type { Backend, Results } from './lib/results'
import { ROOT, TARGETS, type Target } from './lib/servers'
import { latestPhase, probeRoutes, webhookPhases } from './phases/extras'
import { historyPhases } from './phases/history'
import { fleetPagePhase } from './phases/fleet-page'
import { detectFleet } from './phases/fleet-setup'
import { ingestPhases } from './phases/ingest'
import { sustainedPhases } from './phases/sustained'
import { fanoutRun, realtimeRound, recoveryRun } from './phases/realtime'

const SCENARIOS = [
  'fanout',
  'realtime',
  'ingest',
  'webhooks',
  'latest',
  'history',
  'recovery',
  'fleet-page',
] as const

const { values: args } = parseArgs({
  args: Bun.argv.slice(2),
  options: {
    quick: { type: 'boolean', default: false },
    tiny: { type: 'boolean', default: false },
    out: { type: 'string' },
    only: { type: 'string' },
    reps: { type: 'string' },
    sizes: { type: 'string' },
    /** Sensors of the fleet load (default 100). */
    sensors: { type: 'string' },
    /** Variables per reading, 2 or 5; detected from the server when left out. */
    vars: { type: 'string' },
    /** Databases the history phase builds, `sqlite,postgres` (the quick run builds only SQLite's). */
    'history-engines': { type: 'string' },
    /** Vigía runs under Bun's CPU profiler; profiles land in .tmp/bench-profile. */
    profile: { type: 'boolean', default: false },
    /** Re-renders the report from a results.json without measuring. */
    render: { type: 'string' },
    /** Writes a quick run's results into BENCHMARKS.md and bench/ as a full run does. */
    publish: { type: 'boolean', default: false },
    /** Ingest only on these backends (sqlite, postgres, postgres-2), e.g. while working on one of them. */
    backends: { type: 'string' },
    /** Warm-up before each measured ingest run, ms (the plan's otherwise). */
    warmup: { type: 'string' },
  },
})
const mode: Mode = args.tiny ? 'tiny' : args.quick ? 'quick' : 'full'
const plan = { ...PLANS[mode] }
if (args.reps)
  plan.reps = plan.ingestReps = plan.recoveryReps = plan.realtimeRounds = Number(args.reps)
if (args.warmup) plan.ingestWarmupMs = Number(args.warmup)
if (args.sizes) plan.sizes = args.sizes.split(',').map(Number)
if (args.sensors) plan.sensors = Number(args.sensors)
if (args['history-engines']) {
  const engines = args['history-engines'].split(',')
  if (engines.some((e) => e !== 'sqlite' && e !== 'postgres'))
    throw new Error('--history-engines takes sqlite, postgres or both')
  plan.historyEngines = engines as ('sqlite' | 'postgres')[]
}
if (args.vars && args.vars !== '2' && args.vars !== '5') throw new Error('--vars takes 2 or 5')
const only = new Set<string>(args.only ? args.only.split(',') : SCENARIOS)
for (const name of only)
  if (!(SCENARIOS as readonly string[]).includes(name))
    throw new Error(`--only: unknown phase "${name}"; phases are ${SCENARIOS.join(', ')}`)

const log = (line: string) => process.stderr.write(`[bench] ${line}\n`)

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
  const largest = Math.max(...(only.has('fanout') ? plan.sizes : [0]), plan.realtimeSubscribers)
  const needed = largest + 2000
  if (files.hard < needed)
    throw new Error(
      `The open-file limit (hard ${files.hard}) is below the ${needed} that ${largest} subscribers need; raise it (ulimit -Hn) or pass --sizes.`,
    )
  const skews = await startWorkers()
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
        postgres: packageVersion('postgres'),
      },
      load: { before: loadAverage(), after: [] },
      clockSkewMs: Math.max(...skews.map(Math.abs)),
      openFiles: files.hard,
      plan: { ...plan, ...LOAD },
    },
    fanout: [],
    ingest: [],
    recovery: [],
    realtime: [],
    latest: [],
    history: [],
    webhooks: [],
    fleetPage: [],
    skipped: [],
    failures: [],
  }
  log(
    `${mode} run: ${results.meta.machine.cpu}, ${results.meta.machine.cores} cores; clocks agree within ${(results.meta.clockSkewMs * 1000).toFixed(1)} µs`,
  )

  const ctx: Ctx = {
    mode,
    plan,
    results,
    profile: args.profile ? join(ROOT, '.tmp', 'bench-profile') : undefined,
    vars: args.vars ? (Number(args.vars) as 2 | 5) : undefined,
    backends: args.backends ? (args.backends.split(',') as Backend[]) : undefined,
    log,
    async attempt(what, run) {
      try {
        return await run()
      } catch (error) {
        log(`  failed: ${what}: ${String(error)}`)
        results.failures.push({ what, error: String(error).slice(0, 300) })
        return undefined
      } finally {
        // A checkpoint, so that a run cut short still leaves what it measured.
        mkdirSync(join(ROOT, '.tmp'), { recursive: true })
        writeFileSync(join(ROOT, '.tmp', `bench-${mode}-partial.json`), JSON.stringify(results))
      }
    },
    skip(what, why) {
      log(`skipped: ${what}: ${why}`)
      results.skipped.push({ what, why })
    },
  }

  if (only.has('fanout'))
    for (const size of plan.sizes)
      for (let rep = 1; rep <= plan.reps; rep++)
        for (const target of Object.keys(TARGETS) as Target[]) {
          const what = `fan-out: ${TARGETS[target].label}, ${size} subscribers, run ${rep}/${plan.reps}`
          log(what)
          const run = await ctx.attempt(what, () => fanoutRun(ctx, target, size, rep))
          if (run) results.fanout.push(run)
        }

  if (only.has('realtime'))
    for (let round = 1; round <= plan.realtimeRounds; round++)
      for (const target of ['vigia', 'bun'] as const) {
        const what = `realtime at the limit: ${TARGETS[target].label}, ${plan.realtimeSubscribers} subscribers × ${plan.realtimeEvents} events, round ${round}`
        const run = await ctx.attempt(what, () => realtimeRound(ctx, target, round))
        if (!run) continue
        results.realtime.push(run)
        log(
          `${what}: ${run.cpuPerDeliveryUs.toFixed(3)} µs of server CPU per delivery (${run.deliveries}/${run.expected}; ${run.warmupEvents} warm-up events, compiler threads ${run.threadsUsPerEvent?.jit.toFixed(1)} µs per event)`,
        )
      }

  const needsFleet = ['ingest', 'webhooks', 'latest', 'history'].some((p) => only.has(p))
  const fleetKnown =
    needsFleet &&
    (await ctx.attempt('detecting the fleet load', () => detectFleet(ctx).then(() => true))) ===
      true
  const routes = needsFleet && fleetKnown ? await probeRoutes() : new Set<string>()

  if (only.has('ingest') && fleetKnown) {
    await ingestPhases(ctx)
    await sustainedPhases(ctx)
  }
  if (only.has('webhooks') && fleetKnown) await webhookPhases(ctx, routes)
  if (only.has('latest') && fleetKnown)
    await ctx.attempt('latest values', () => latestPhase(ctx, routes))
  if (only.has('history') && fleetKnown) await historyPhases(ctx, routes)

  if (only.has('recovery'))
    for (let rep = 1; rep <= plan.recoveryReps; rep++) {
      const run = await ctx.attempt(`recovery, run ${rep}`, () => recoveryRun(ctx, rep))
      if (!run) continue
      log(
        `recovery, run ${rep}: ${run.count} events in ${run.ms.toFixed(0)} ms, RSS +${run.rssPeakKb - run.rssBeforeKb} kB at peak`,
      )
      results.recovery.push(run)
    }

  if (only.has('fleet-page')) {
    const run = await ctx.attempt('fleet page', () => fleetPagePhase(ctx))
    if (run) {
      results.fleetPage!.push(run)
      log(
        `fleet page: ${run.sensors} sensors, ${Math.round(run.sentPerSecond)} readings/s: shown p50 ${run.dom.p50.toFixed(1)} ms, p99 ${run.dom.p99.toFixed(1)} ms (socket alone p50 ${run.transport.p50.toFixed(1)} ms); ${run.shown}/${run.timed} shown${run.behind ? ', FELL BEHIND' : ''}`,
      )
    }
  }

  results.meta.load.after = loadAverage()
  results.meta.seconds = Math.round((Date.now() - started) / 1000)

  write(results)
}

/** Writes results.json, the chart and the generated section of BENCHMARKS.md. */
function write(results: Results, fromFile?: string) {
  const intoRepo = (results.meta.mode === 'full' || args.publish) && !args.out
  const outDir =
    args.out ??
    (intoRepo
      ? ROOT
      : fromFile
        ? dirname(fromFile)
        : join(ROOT, '.tmp', `bench-${results.meta.mode}`))
  mkdirSync(outDir, { recursive: true })
  const chartPath = join(intoRepo ? join(ROOT, 'bench') : outDir, 'latency.svg')
  const resultsPath = intoRepo
    ? join(ROOT, 'bench', 'results.json')
    : (fromFile ?? join(outDir, 'results.json'))
  const markdownPath = join(outDir, 'BENCHMARKS.md')
  const copy = resolve(resultsPath) !== resolve(fromFile ?? '')
  if (copy) writeFileSync(resultsPath, `${JSON.stringify(results, null, 2)}\n`)
  writeFileSync(chartPath, renderChart(results))
  const section = renderMarkdown(results, relative(outDir, chartPath))
  writeMarkdown(markdownPath, section)
  process.stdout.write(`${section}\n`)
  log(
    `wrote ${relative(ROOT, markdownPath) || markdownPath}, ${relative(ROOT, chartPath)}${copy ? `, ${relative(ROOT, resultsPath)}` : ''}${results.meta.seconds ? ` in ${results.meta.seconds} s` : ''}`,
  )
}

try {
  if (args.render) {
    const results = JSON.parse(readFileSync(args.render, 'utf8')) as Results
    // Results from before a phase existed render without it.
    for (const key of [
      'realtime',
      'latest',
      'history',
      'webhooks',
      'fleetPage',
      'skipped',
    ] as const)
      results[key] ??= []
    write(results, args.render)
  } else await main()
} finally {
  await stopWorkers()
}
