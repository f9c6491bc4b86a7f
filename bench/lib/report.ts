// Turns results.json into the tables of BENCHMARKS.md and an SVG chart of latency against subscriber count.
import { existsSync, readFileSync, writeFileSync } from 'node:fs'
import type { Path } from './protocol'
import { FLEET_PAGE_TEXT, fleetPageGoals, fleetPageTable } from './report-fleet'
import type { PhaseResult, Results } from './results'
import { ingestTables, moreGoals, webhookTables, type Goal } from './report-more'
import { historyTables, latestTable, realtimeTable, warmupText } from './report-tables'
import { TARGETS, type Target } from './servers'

export const BEGIN =
  '<!-- results:begin (written by `bun run bench`; edit outside these markers) -->'
export const END = '<!-- results:end -->'

/** A table's header row and the rule under it. */
export const header = (...columns: string[]) => [
  `| ${columns.join(' | ')} |`,
  `|${' --- |'.repeat(columns.length)}`,
]

export interface Spread {
  median: number
  min: number
  max: number
  n: number
}

export function spread(values: number[]): Spread {
  const xs = values.filter((v) => Number.isFinite(v)).sort((a, b) => a - b)
  if (xs.length === 0) return { median: NaN, min: NaN, max: NaN, n: 0 }
  const mid = xs.length >> 1
  const median = xs.length % 2 ? xs[mid]! : (xs[mid - 1]! + xs[mid]!) / 2
  return { median, min: xs[0]!, max: xs[xs.length - 1]!, n: xs.length }
}

const sig = (n: number, digits = 3) => Number(n.toPrecision(digits)).toLocaleString('en-US')

export function rate(n: number): string {
  if (!Number.isFinite(n)) return '–'
  if (n >= 1e6) return `${sig(n / 1e6)} M`
  if (n >= 1e4) return `${sig(n / 1e3)} k`
  return Math.round(n).toLocaleString('en-US')
}

export function ms(n: number): string {
  if (!Number.isFinite(n)) return '–'
  return n.toFixed(n < 10 ? 2 : n < 100 ? 1 : 0)
}

const kb = (n: number) => (Number.isFinite(n) ? n.toFixed(1) : '–')
const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}%` : '–')

/** "median (min–max)" when there is more than one run. */
export function show(s: Spread, format: (n: number) => string): string {
  if (s.n <= 1) return format(s.median)
  return `${format(s.median)} (${format(s.min)}–${format(s.max)})`
}

type Series = { target: Target; path: Path }

const SERIES: (Series & { label: string; color: string })[] = [
  { target: 'vigia', path: 'readings', label: 'Vigía, POST /readings', color: '#0b7285' },
  { target: 'vigia', path: 'test-event', label: 'Vigía, POST /ws/test-event', color: '#5c940d' },
  { target: 'bun', path: 'readings', label: 'Bun.serve minimal', color: '#e8590c' },
  { target: 'socketio', path: 'readings', label: 'Socket.IO on Node', color: '#7048e8' },
]

function phases(results: Results, s: Series, size: number) {
  const runs = results.fanout.filter((r) => r.target === s.target && r.size === size)
  const paths = runs.flatMap((r) => r.paths.filter((p) => p.path === s.path))
  return {
    runs,
    throughput: paths.map((p) => p.throughput),
    latency: paths.map((p) => p.latency),
    light: paths.flatMap((p) => (p.light ? [p.light] : [])),
  }
}

/**
 * Deliveries/s of `a` over `b`, run by run: runs with the same number ran one after the other, under
 * the same outside load, so their ratio is steadier than the ratio of medians.
 */
function pairedRatio(results: Results, a: Series, b: Series, size: number): Spread {
  const dps = (s: Series) =>
    new Map(
      results.fanout
        .filter((r) => r.target === s.target && r.size === size)
        .flatMap((r) =>
          r.paths.filter((p) => p.path === s.path).map((p) => [r.rep, p.throughput] as const),
        )
        .map(([rep, p]) => [rep, p.deliveriesPerSecond]),
    )
  const of = dps(b)
  return spread([...dps(a)].map(([rep, v]) => v / (of.get(rep) ?? NaN)))
}

const times = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–')

const sizesOf = (results: Results) =>
  [...new Set(results.fanout.map((r) => r.size))].sort((a, b) => a - b)

const complete = (ps: PhaseResult[]) => {
  const missing = ps.reduce((n, p) => n + (p.expected - p.deliveries), 0)
  const bad = ps.reduce((n, p) => n + p.short + p.closed + p.errors, 0)
  return missing === 0 && bad === 0 ? 'all' : `${missing} missing, ${bad} faults`
}

function fanoutTables(results: Results): string[] {
  const out: string[] = []
  for (const size of sizesOf(results)) {
    const first = phases(results, SERIES[0]!, size)
    const r = first.latency[0]?.rate
    const l = first.light[0]?.rate
    out.push(
      `#### ${size.toLocaleString('en-US')} subscribers on one channel`,
      '',
      ...header(
        'server, emitted through',
        'deliveries/s (max)',
        'vs Bun limit',
        'vs Socket.IO',
        'events/s',
        `p50 / p99 / max at ${r ?? '?'} events/s (ms)`,
        `p50 / p99 / max at ${l ?? '?'} events/s (ms)`,
        'every message delivered',
        'CPU: server / busiest generator / others',
      ),
    )
    const lat = (ps: PhaseResult[]) => {
      if (ps.length === 0) return '–'
      const p50 = spread(ps.map((p) => p.latency.p50))
      const p99 = spread(ps.map((p) => p.latency.p99))
      const max = spread(ps.map((p) => p.latency.max))
      return `${ms(p50.median)} / ${show(p99, ms)} / ${ms(max.median)}`
    }
    for (const s of SERIES) {
      const { throughput, latency, light } = phases(results, s, size)
      if (throughput.length === 0) continue
      const dps = spread(throughput.map((p) => p.deliveriesPerSecond))
      const eps = spread(throughput.map((p) => p.eventsPerSecond))
      const server = spread(throughput.map((p) => p.cpu.server))
      const gen = spread(throughput.map((p) => Math.max(...p.cpu.generators)))
      const others = spread(throughput.map((p) => p.cpu.others))
      out.push(
        `| ${s.label} | ${show(dps, rate)} | ${show(pairedRatio(results, s, SERIES[2]!, size), times)} | ${show(pairedRatio(results, s, SERIES[3]!, size), times)} | ${show(eps, rate)} | ${lat(latency)} | ${lat(light)} | ${complete([...throughput, ...latency, ...light])} | ${pct(server.median)} / ${pct(gen.median)} / ${pct(others.median)} |`,
      )
    }
    out.push('')
  }
  return out
}

function connectionTable(results: Results): string[] {
  const out = [
    ...header(
      'server',
      'connections',
      'server RSS per idle connection (KB)',
      'connect rate (connections/s)',
      'failed',
    ),
  ]
  for (const size of sizesOf(results))
    for (const target of Object.keys(TARGETS) as Target[]) {
      const runs = results.fanout.filter((r) => r.target === target && r.size === size)
      if (runs.length === 0) continue
      out.push(
        `| ${TARGETS[target].label} | ${size.toLocaleString('en-US')} | ${show(spread(runs.map((r) => r.memory.perConnectionKb)), kb)} | ${show(spread(runs.map((r) => r.connect.perSecond)), rate)} | ${runs.reduce((n, r) => n + r.connect.failed, 0)} |`,
      )
    }
  return out
}

function recoveryTable(results: Results): string[] {
  const runs = results.recovery
  if (runs.length === 0) return []
  const ok = runs.every((r) => r.count === r.events && r.inOrder && r.recovered === true)
  return [
    ...header(
      'missed events',
      'time to replay all (ms)',
      'events/s',
      'first message after (ms)',
      'server RSS before (MB)',
      'RSS added at peak (MB)',
      'RSS added after (MB)',
      'all in order, `recovered: true`',
    ),
    `| ${runs[0]!.events.toLocaleString('en-US')} | ${show(spread(runs.map((r) => r.ms)), ms)} | ${show(spread(runs.map((r) => r.perSecond)), rate)} | ${ms(spread(runs.map((r) => r.connectedMs)).median)} | ${(spread(runs.map((r) => r.rssBeforeKb)).median / 1024).toFixed(1)} | ${show(spread(runs.map((r) => (r.rssPeakKb - r.rssBeforeKb) / 1024)), (n) => n.toFixed(1))} | ${show(spread(runs.map((r) => (r.rssAfterKb - r.rssBeforeKb) / 1024)), (n) => n.toFixed(1))} | ${ok ? 'yes' : runs.map((r) => `${r.count}/${r.events} ${r.inOrder ? '' : 'out of order '}${r.error ?? ''}`).join('; ')} |`,
  ]
}

function goals(results: Results): Goal[] {
  const at = (s: Series, size: number) => phases(results, s, size)
  const median = (xs: number[]) => spread(xs).median
  const list: Goal[] = []
  const v1k = at(SERIES[0]!, 1000)
  if (v1k.throughput.length > 0) {
    const v = median(v1k.throughput.map((p) => p.deliveriesPerSecond))
    const b = median(at(SERIES[2]!, 1000).throughput.map((p) => p.deliveriesPerSecond))
    const s = median(at(SERIES[3]!, 1000).throughput.map((p) => p.deliveriesPerSecond))
    const vb = pairedRatio(results, SERIES[0]!, SERIES[2]!, 1000)
    const vs = pairedRatio(results, SERIES[0]!, SERIES[3]!, 1000)
    list.push(
      {
        goal: 'fan-out at 1,000 subscribers ≥ 0.8 × minimal Bun',
        measured: `${show(vb, times)} run by run (medians: ${rate(v)} vs ${rate(b)} deliveries/s)`,
        met: vb.median >= 0.8,
      },
      {
        goal: 'fan-out at 1,000 subscribers ≥ 5 × Socket.IO',
        measured: `${show(vs, times)} run by run (medians: ${rate(v)} vs ${rate(s)} deliveries/s)`,
        met: vs.median >= 5,
      },
    )
    const p99At = (s: Series) => median(at(s, 1000).latency.map((p) => p.latency.p99))
    for (const s of [SERIES[0]!, SERIES[1]!]) {
      const p99 = p99At(s)
      list.push({
        goal: `p99 < 25 ms at ${at(s, 1000).latency[0]?.rate} events/s, 1,000 subscribers (${s.label})`,
        measured: `${ms(p99)} ms (at the same load: minimal Bun ${ms(p99At(SERIES[2]!))} ms, Socket.IO ${ms(p99At(SERIES[3]!))} ms)`,
        met: p99 < 25,
      })
    }
  }
  const idle = (target: Target) =>
    median(
      results.fanout
        .filter((r) => r.target === target && r.size === 10000)
        .map((r) => r.memory.perConnectionKb),
    )
  const perConn = idle('vigia')
  // No socket costs under half a KB (bare Bun.serve's ~2-3 KB is the floor): a smaller growth means the
  // server handed back the warm-up's garbage while the sockets connected, which hides what they cost.
  const hidden = perConn < 0.5
  if (Number.isFinite(perConn))
    list.push({
      goal: 'idle memory ≤ 4 KB per WebSocket at 10,000 connections',
      measured: `${kb(perConn)} KB (bare Bun.serve ${kb(idle('bun'))} KB, Socket.IO ${kb(idle('socketio'))} KB)${hidden ? ': not a measurement, the server’s RSS barely grew because it returned the warm-up’s garbage meanwhile' : ''}`,
      met: hidden ? undefined : perConn <= 4,
    })
  return [...list, ...moreGoals(results), ...fleetPageGoals(results)]
}

export function renderMarkdown(results: Results, chart: string): string {
  const { meta } = results
  const m = meta.machine
  const others = spread(
    [
      ...results.fanout
        .flatMap((r) =>
          r.paths.flatMap((p) => [p.throughput, p.latency, ...(p.light ? [p.light] : [])]),
        )
        .map((p) => p.cpu),
      ...results.ingest.map((r) => r.cpu),
    ].map((c) => c.others),
  )
  const gens = spread(
    [
      ...results.fanout.flatMap((r) => r.paths.map((p) => p.throughput.cpu)),
      ...results.ingest.map((r) => r.cpu),
    ].map((c) => Math.max(...c.generators)),
  )
  const lines = [
    BEGIN,
    '',
    `Command: \`${meta.command}\` (${meta.mode} run, ${meta.seconds} s) · ${meta.date.slice(0, 16).replace('T', ' ')} UTC · commit \`${meta.commit}\`${meta.dirty ? ' with uncommitted changes' : ''}`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores${m.virtualized ? ' (virtual machine)' : ''}, ${m.memoryGiB} GiB RAM, Linux ${m.kernel}; ${Object.entries(
      meta.versions,
    )
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; open-file limit ${meta.openFiles}.`,
    '',
    `Load: load average ${meta.load.before.join(' / ')} before, ${meta.load.after.join(' / ')} after. CPU used by processes outside the benchmark while it measured: median ${pct(others.median)} of one core (max ${pct(others.max)}), out of ${m.cores * 100}%. The busiest load-generator process used a median ${pct(gens.median)} of one core (max ${pct(gens.max)}) in the throughput runs.`,
    '',
    `Figures are the median of ${[...new Set(results.fanout.map((r) => r.rep))].length || 1} runs with (min–max) beside it; CPU is % of one core.`,
    '',
    ...(results.failures?.length
      ? [
          `**${results.failures.length} run(s) failed and are left out:** ${results.failures.map((f) => `${f.what} (${f.error})`).join('; ')}`,
          '',
        ]
      : []),
    '### Targets',
    '',
    ...header('target', 'measured', 'met'),
    ...goals(results).map(
      (g) =>
        `| ${g.goal} | ${g.measured} | ${g.met === undefined ? '–' : g.met ? 'yes' : '**no**'} |`,
    ),
    '',
    '### 1. Fan-out',
    '',
    `Deliveries/s: the generator keeps at most ${String(meta.plan.window)} events in flight (sent but not yet at every subscriber) and ${String(meta.plan.concurrency)} requests open, for ${Number(meta.plan.throughputMs) / 1000} s. Latency, from the moment the request is sent to the moment each client has the message, at two fixed rates for ${Number(meta.plan.latencyMs) / 1000} s each: the target load (${String(meta.plan.maxRate)} events/s, fewer above 1,000 subscribers to hold ${rate(Number(meta.plan.deliveriesPerSecond))} deliveries/s) and a light load (at most ${rate(Number(meta.plan.lightDeliveriesPerSecond ?? NaN))} deliveries/s). CPU columns are for the deliveries/s run.`,
    '',
    ...fanoutTables(results),
    `![Latency against subscriber count](${chart})`,
    '',
    '### 2. The realtime path at the limit',
    '',
    `${String(meta.plan.realtimeRounds)} alternating rounds (Vigía, then the bare Bun.serve server, each on a fresh start) of ${Number(meta.plan.realtimeSubscribers).toLocaleString('en-US')} subscribers and ${Number(meta.plan.realtimeEvents).toLocaleString('en-US')} events through \`POST /api/v1/readings\`, sent as fast as a window of 64 undelivered events allows, after ${warmupText(meta.plan, results.realtime)} on the same fresh server (so that JSC has compiled each server's request path). Server CPU is the sum of its threads' run time (\`/proc/<pid>/task/*/schedstat\`) from the first request to the last delivery, divided by the deliveries; the ratio is taken round by round. Both servers send the same frame (the reading with \`values\`, CONTRACT §7).`,
    '',
    ...realtimeTable(results),
    '',
    '### 3. Ingest',
    '',
    fleetText(results),
    '',
    ...ingestTables(results),
    '### 4. Connections',
    '',
    'Server RSS (VmRSS from /proc/<pid>/status) once every subscriber connected and sat idle, minus RSS once the first tenth had, over the other nine tenths (runs before session 9 took RSS before any socket, which the collection of the warm-up’s garbage could hide); connect rate counts until every client has its `connection` message.',
    '',
    ...connectionTable(results),
    '',
    '### 5. Recovery',
    '',
    'A client reconnects with `since` after missing every event of a run of readings; time from opening the socket to the last replayed event, and server RSS sampled every 5 ms.',
    '',
    ...recoveryTable(results),
    '',
    '### 6. Latest values (issue 13)',
    '',
    `\`GET /api/v1/latest\` one request after the other, after ${Number(meta.plan.latestSensors).toLocaleString('en-US')} sensors got a reading each; time to the last byte of the answer.`,
    '',
    ...orSkipped(latestTable(results), results, 'latest'),
    '',
    '### 7. History (issue 14)',
    '',
    ...orSkipped(historyTables(results), results, 'history'),
    '',
    '### 8. Webhooks (issue 15)',
    '',
    "A local receiver (in a load-generator process) answers 204 at once and checks each Standard Webhooks signature; latency runs from the event frame's own `timestamp` (its commit) to the moment the receiver has it.",
    '',
    ...orSkipped(webhookTables(results), results, 'webhooks'),
    '',
    '### 9. Fleet page (issue 13)',
    '',
    FLEET_PAGE_TEXT,
    '',
    ...orSkipped(fleetPageTable(results), results, 'fleet page'),
    '',
    END,
  ]
  return lines.join('\n')
}

/** The skipped phases of a section, said plainly, when the section has no figures. */
function orSkipped(lines: string[], results: Results, prefix: string): string[] {
  if (lines.length) return lines
  const why = results.skipped.filter((s) => s.what.startsWith(prefix))
  if (why.length) return why.map((s) => `- ${s.what}: ${s.why}.`)
  return ['Not measured in this run.']
}

function fleetText(results: Results): string {
  const f = results.meta.fleet
  if (!f) return 'No fleet load in this run.'
  const p = results.meta.plan
  return [
    `**The load.** ${f.sensors} sensors, each with its own series per variable (a daily cycle with its own level, swing and phase, noise, and a spike about once an hour per variable), one reading per sensor per second of simulated time, timestamps increasing per sensor from midnight UTC ${Math.round((Date.parse(results.meta.date) - f.startMs) / 86_400_000)} days before the run; ${f.vars === 5 ? 'five variables per reading in `values` (temperatura, humedad, co2, presion, pm25)' : 'two variables per reading, top-level `temperatura` and `humedad` (this build does not store `values`; the harness switches to five by itself when it does)'}. Each sender owns its sensors and sends them round-robin, so each sensor's readings are committed in time order; a batch of 1,000 from 4 senders holds ${Math.round(4000 / f.sensors)} seconds of its ${Math.ceil(f.sensors / 4)} sensors. The sensors are created before the phase, with the detector states two days of their own series left them (a fresh server would start them empty: about 1 KB of state instead of about 2.1 KB, written back with every batch); a fresh server (and a fresh database) for every run.`,
    `**Checks.** A live subscriber on \`readings\` must get every acknowledged reading once, in seq order, each sensor's in time order ("every reading delivered"); delivery latency is measured on the readings of one sensor in 16 (request sent → subscriber has it).`,
    `**References**, in the same run, each right after the Vigía run it is compared with (A/B/A/B, ${Number(p.ingestReps) === 1 ? 'once' : `${String(p.ingestReps)} times`} each): the storage itself, writing the same reading rows and event rows into a fresh database migrated with the build's own migrations (so the same columns and indexes), for the same fleet readings and batch size. Plain bun:sqlite: prepared statements, WAL, synchronous=NORMAL, one transaction per batch, the event frame built per row with \`JSON.stringify\`; its rate counts only the time spent writing. Plain postgres.js: one \`unnest\` insert per table per batch in one transaction, as many batches in flight as Vigía's senders, on the same PostgreSQL; seqs are handed out in the writer's process. Ratios are taken run by run (each Vigía run against the reference run just after it) and the median reported. Server CPU per reading (the server's, or the reference process's, CPU time over the measured phase divided by the readings stored) counts what each side spent whatever the machine's load; PostgreSQL's own processes are not in it, they have a column of their own on the PostgreSQL tables (the CPU time of every PostgreSQL process on the machine over the phase, per reading stored; "others" leaves it out). Single POSTs have no storage reference; instead, once a repeat, the bare Bun.serve server takes the same senders' POSTs right after Vigía's run with the most senders: what this machine answers with nothing stored.`,
    `Phases: a ${Number(p.ingestWarmupMs ?? p.warmupMs) / 1000} s warm-up on each fresh server, then ${Number(p.ingestMs) / 1000} s measured, closed loop (each sender waits for its answer). Every sender accepts gzip and brotli, as \`fetch\` does by default, so the answer to a batch (its stored readings) is compressed; the "Prefer: return=minimal" row sends the same batches asking for no answer body (a gateway that does not need its readings back).`,
  ].join('\n\n')
}

/** Replaces the generated section of BENCHMARKS.md, keeping what people wrote around it. */
export function writeMarkdown(path: string, section: string) {
  const existing = existsSync(path) ? readFileSync(path, 'utf8') : ''
  const begin = existing.indexOf(BEGIN)
  const end = existing.indexOf(END)
  const text =
    begin >= 0 && end > begin
      ? `${existing.slice(0, begin)}${section}${existing.slice(end + END.length)}`
      : `# Benchmarks\n\n${section}\n`
  writeFileSync(path, text)
}

/** Log-log chart of p99 latency per server against subscribers: target load solid, light load dashed. */
export function renderChart(results: Results): string {
  const sizes = sizesOf(results)
  const W = 860
  const H = 460
  const L = 70
  const R = 250
  const T = 50
  const B = 70
  const pts = SERIES.map((s) => ({
    ...s,
    points: sizes.map((size) => {
      const { latency, light } = phases(results, s, size)
      return {
        size,
        target: spread(latency.map((p) => p.latency.p99)).median,
        light: spread(light.map((p) => p.latency.p99)).median,
      }
    }),
  })).filter((s) => s.points.some((p) => Number.isFinite(p.target)))
  const ys = pts.flatMap((s) => s.points.flatMap((p) => [p.light, p.target])).filter((v) => v > 0)
  const yMin = 10 ** Math.floor(Math.log10(Math.min(...ys, 1)))
  const yMax = 10 ** Math.ceil(Math.log10(Math.max(...ys, 10)))
  const xMin = Math.min(...sizes) / 1.5
  const xMax = Math.max(...sizes) * 1.5
  const x = (v: number) =>
    L + ((Math.log10(v) - Math.log10(xMin)) / (Math.log10(xMax) - Math.log10(xMin))) * (W - L - R)
  const y = (v: number) =>
    H -
    B -
    ((Math.log10(Math.max(v, yMin)) - Math.log10(yMin)) / (Math.log10(yMax) - Math.log10(yMin))) *
      (H - T - B)
  const plan = results.meta.plan
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${L}" y="24" font-size="15" font-weight="600">p99 fan-out latency against subscribers on one channel (request sent → client has it)</text>`,
    `<text x="${L}" y="40" fill="#555">solid: target load (≤${rate(Number(plan.deliveriesPerSecond))} deliveries/s) · dashed: light load (≤${rate(Number(plan.lightDeliveriesPerSecond))} deliveries/s) · ${results.meta.machine.cores} cores, ${results.meta.mode} run, commit ${results.meta.commit}</text>`,
  ]
  for (let d = yMin; d <= yMax; d *= 10)
    for (const m of [1, 2, 5]) {
      const v = d * m
      if (v > yMax) break
      parts.push(
        `<line x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}" stroke="${m === 1 ? '#ccc' : '#eee'}"/>`,
        `<text x="${L - 8}" y="${y(v) + 4}" text-anchor="end" fill="#555">${v < 1 ? v.toFixed(1) : v}</text>`,
      )
    }
  for (const size of sizes) {
    const { latency, light } = phases(results, SERIES[0]!, size)
    const rates = [latency[0]?.rate, light[0]?.rate].filter((r) => r !== undefined).join(' · ')
    parts.push(
      `<line x1="${x(size)}" x2="${x(size)}" y1="${T}" y2="${H - B}" stroke="#eee"/>`,
      `<text x="${x(size)}" y="${H - B + 18}" text-anchor="middle">${size.toLocaleString('en-US')}</text>`,
      `<text x="${x(size)}" y="${H - B + 33}" text-anchor="middle" fill="#777" font-size="11">${rates} ev/s</text>`,
    )
  }
  if (yMin < 25 && yMax > 25)
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${y(25)}" y2="${y(25)}" stroke="#c92a2a" stroke-dasharray="2 3"/>`,
      `<text x="${W - R - 4}" y="${y(25) - 4}" text-anchor="end" fill="#c92a2a" font-size="11">target: p99 under 25 ms</text>`,
    )
  parts.push(
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/>`,
    `<line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`,
    `<text x="${(L + W - R) / 2}" y="${H - 14}" text-anchor="middle">subscribers (log scale) · events/s below each: target · light load</text>`,
    `<text transform="translate(18 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">p99 latency, ms (log scale)</text>`,
  )
  pts.forEach((s, i) => {
    for (const [key, dash] of [
      ['target', ''],
      ['light', ' stroke-dasharray="5 4"'],
    ] as const) {
      const points = s.points.filter((p) => Number.isFinite(p[key]))
      if (points.length === 0) continue
      const d = points.map(
        (p, k) => `${k ? 'L' : 'M'}${x(p.size).toFixed(1)} ${y(p[key]).toFixed(1)}`,
      )
      parts.push(
        `<path d="${d.join(' ')}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`,
      )
      for (const p of points)
        parts.push(
          `<circle cx="${x(p.size).toFixed(1)}" cy="${y(p[key]).toFixed(1)}" r="3" fill="${s.color}"/>`,
        )
    }
    const ly = T + 10 + i * 22
    parts.push(
      `<line x1="${W - R + 20}" x2="${W - R + 44}" y1="${ly}" y2="${ly}" stroke="${s.color}" stroke-width="2"/>`,
      `<text x="${W - R + 50}" y="${ly + 4}">${s.label}</text>`,
    )
  })
  parts.push('</svg>')
  return `${parts.join('\n')}\n`
}
