// The report's tables for ingest (Vigía beside its reference, ratio run by run, and this host's ceiling for
// single POSTs) and webhooks, plus the targets of issues 13-17 (the other tables: report-tables.ts).
import type { IngestRun, Results } from './results'
import { header, ms, rate, show, spread, type Spread } from './report'

export const times = (n: number) => (Number.isFinite(n) ? `${n.toFixed(2)}×` : '–')
export const pct = (n: number) => (Number.isFinite(n) ? `${Math.round(n)}%` : '–')

const BACKENDS = {
  sqlite: { title: 'Vigía on SQLite', ref: 'plain bun:sqlite' },
  postgres: { title: 'Vigía on PostgreSQL', ref: 'plain postgres.js' },
  'postgres-2': { title: 'Two Vigía instances on one PostgreSQL (+ Redis)', ref: '' },
} as const

/** The main fleet runs (not the upper bound, the webhook-cost, heat-wave, sustained or two-variable runs). */
const main = (r: IngestRun) =>
  r.load === 'fleet' && !r.webhook && !r.breach && !r.sustained && !r.label.includes('variables')

function runsOf(results: Results, backend: string, system: string, label: string, extra = main) {
  return results.ingest.filter(
    (r) => r.backend === backend && r.system === system && r.label === label && extra(r),
  )
}

/** a/b for runs with the same repeat number (they ran one right after the other), as a spread. */
export function paired(a: IngestRun[], b: IngestRun[]): Spread {
  const of = new Map(b.map((r) => [r.rep, r.perSecond]))
  return spread(a.map((r) => r.perSecond / (of.get(r.rep) ?? NaN)))
}

const perSecond = (runs: IngestRun[]) => spread(runs.map((r) => r.perSecond))

/** CPU time of the server process(es) (or the reference's process) per reading stored, µs. */
export const cpuPerReading = (r: IngestRun) =>
  ((r.cpu.server / 100) * r.cpu.seconds * 1e6) / Math.max(r.readings, 1)

/** CPU time of every PostgreSQL process per reading stored, µs (NaN where the run did not count it). */
const databasePerReading = (r: IngestRun) =>
  r.cpu.database === undefined
    ? NaN
    : ((r.cpu.database / 100) * r.cpu.seconds * 1e6) / Math.max(r.readings, 1)

/** a's CPU per reading over b's, run by run. */
function pairedCpu(a: IngestRun[], b: IngestRun[]): Spread {
  const of = new Map(b.map((r) => [r.rep, cpuPerReading(r)]))
  return spread(a.map((r) => cpuPerReading(r) / (of.get(r.rep) ?? NaN)))
}

const us = (n: number) => (Number.isFinite(n) ? n.toFixed(n < 10 ? 2 : 1) : '–')

function delivered(runs: IngestRun[]) {
  if (runs.length === 0) return '–'
  return runs.every((r) => r.verified)
    ? `all (${runs.reduce((n, r) => n + r.delivered, 0).toLocaleString('en-US')})`
    : runs
        .map((r) => `${r.delivered}/${r.readings}${r.error ? ` ${r.error.slice(0, 80)}` : ''}`)
        .join('; ')
}

function cpu(runs: IngestRun[]) {
  const m = (f: (r: IngestRun) => number) => pct(spread(runs.map(f)).median)
  return `${m((r) => r.cpu.server)} / ${m((r) => Math.max(...r.cpu.generators))} / ${m((r) => r.cpu.others)}`
}

const labelsOf = (runs: IngestRun[]) => [...new Set(runs.map((r) => r.label))]

function vigiaCells(runs: IngestRun[]) {
  const p = (f: (r: IngestRun) => number) => ms(spread(runs.map(f)).median)
  return `${p((r) => r.request.p50)} / ${p((r) => r.request.p99)} | ${p((r) => r.delivery.p99)} | ${delivered(runs)} | ${cpu(runs)}`
}

export function ingestTables(results: Results): string[] {
  const out: string[] = []
  for (const [backend, { title, ref }] of Object.entries(BACKENDS)) {
    const vigia = results.ingest.filter(
      (r) => r.backend === backend && r.system === 'vigia' && main(r),
    )
    if (vigia.length === 0) continue
    const two = backend === 'postgres-2'
    const pg = backend !== 'sqlite'
    const dbHead = pg
      ? [`PostgreSQL's CPU per reading (µs): Vigía / ${two ? 'one instance' : ref}`]
      : []
    const dbCell = (v: IngestRun[], r: IngestRun[]) =>
      pg
        ? ` ${us(spread(v.map(databasePerReading)).median)} / ${r.length ? us(spread(r.map(databasePerReading)).median) : '–'} |`
        : ''
    out.push(
      `#### ${title}`,
      '',
      ...header(
        ...(two
          ? ['how', 'readings/s to a live subscriber', 'vs one instance (run by run)']
          : [
              'how',
              'Vigía: readings/s to a live subscriber',
              `${ref}: readings/s`,
              `Vigía / ${ref} (run by run)`,
              `server CPU per reading (µs): Vigía / ${ref}`,
              `CPU per reading: Vigía / ${ref}`,
            ]),
        ...dbHead,
        'request p50 / p99 (ms)',
        'delivery p99 (ms)',
        'every reading delivered',
        `CPU: ${two ? 'both servers' : 'server'} / busiest generator / others`,
      ),
    )
    for (const label of labelsOf(vigia)) {
      const v = runsOf(results, backend, 'vigia', label)
      if (two) {
        const one = runsOf(results, 'postgres', 'vigia', label)
        out.push(
          `| ${label} | ${show(perSecond(v), rate)} | ${show(paired(v, one), times)} |${dbCell(v, one)} ${vigiaCells(v)} |`,
        )
        continue
      }
      const r = runsOf(results, backend, 'reference', label)
      out.push(
        `| ${label} | ${show(perSecond(v), rate)} | ${r.length ? show(perSecond(r), rate) : '–'} | ${r.length ? show(paired(v, r), times) : '–'} | ${us(spread(v.map(cpuPerReading)).median)} / ${r.length ? us(spread(r.map(cpuPerReading)).median) : '–'} | ${r.length ? show(pairedCpu(v, r), times) : '–'} |${dbCell(v, r)} ${vigiaCells(v)} |`,
      )
    }
    out.push('')
  }
  const bare = results.ingest.filter((r) => r.system === 'bare')
  if (bare.length) {
    out.push(
      ...tableHead(
        "#### This host's ceiling for single POSTs",
        "The bare `Bun.serve` server (`bench/servers/bun-minimal.ts`: parses the JSON, publishes the frame, answers; nothing checked or stored) taking the same senders' POSTs right after Vigía's run, with the same live subscriber. No server that stores its readings answers more on this machine.",
        [
          'how',
          'server',
          'readings/s to a live subscriber',
          'server CPU per reading (µs)',
          'request p50 / p99 (ms)',
          'delivery p99 (ms)',
          'every reading delivered',
          'CPU: server / busiest generator / others',
        ],
      ),
    )
    for (const label of labelsOf(bare)) {
      const rows: [string, IngestRun[]][] = [
        ['bare `Bun.serve`', bare.filter((r) => r.label === label)],
        ['Vigía on SQLite', runsOf(results, 'sqlite', 'vigia', label)],
        ['Vigía on PostgreSQL', runsOf(results, 'postgres', 'vigia', label)],
      ]
      for (const [name, runs] of rows)
        if (runs.length)
          out.push(
            `| ${label} | ${name} | ${show(perSecond(runs), rate)} | ${us(spread(runs.map(cpuPerReading)).median)} | ${vigiaCells(runs)} |`,
          )
    }
    out.push('')
  }
  const upper = results.ingest.filter((r) => r.load === 'identical')
  if (upper.length) {
    out.push(
      ...tableHead(
        '#### Upper bound (identical readings)',
        'One sensor, the same values in every reading, no timestamp: a case that never happens in a fleet, kept to show how much the realistic load costs.',
        [
          'how',
          'readings/s to a live subscriber',
          'vs the fleet load (run by run)',
          'every reading delivered',
          'CPU: server / busiest generator / others',
        ],
      ),
    )
    for (const label of labelsOf(upper)) {
      const u = upper.filter((r) => r.label === label)
      const fleet = runsOf(results, 'sqlite', 'vigia', label)
      out.push(
        `| upper bound (identical readings), ${label}, SQLite | ${show(perSecond(u), rate)} | ${show(paired(u, fleet), times)} | ${delivered(u)} | ${cpu(u)} |`,
      )
    }
    out.push('')
  }
  const vars2 = results.ingest.filter((r) => r.label.includes('variables'))
  if (vars2.length) {
    out.push(
      '#### Five variables against two (issue 13)',
      '',
      ...header('how', '2 variables: readings/s', '5 variables: readings/s', '5 / 2 (run by run)'),
    )
    for (const label of labelsOf(vars2)) {
      const base = label.replace(/, 2 variables$/, '')
      const two = vars2.filter((r) => r.label === label)
      const five = runsOf(results, 'sqlite', 'vigia', base)
      out.push(
        `| ${base}, SQLite | ${show(perSecond(two), rate)} | ${show(perSecond(five), rate)} | ${show(paired(five, two), times)} |`,
      )
    }
    out.push('')
  }
  const hot = results.ingest.filter((r) => r.breach)
  if (hot.length) {
    out.push(
      ...tableHead(
        '#### Thresholds breached across the fleet',
        "The same batches after a type default that most sensor variables cross (`bench/phases/ingest.ts`, HEAT_WAVE): each batch folds its hits into the open anomalies, one update each. Beside the same backend's run on the plain fleet load.",
        [
          'how',
          'breached: readings/s',
          'plain fleet: readings/s',
          'breached / plain (run by run)',
          'server CPU per reading (µs): breached / plain',
          'anomalies open at the end',
          'every reading delivered',
        ],
      ),
    )
    for (const backend of ['sqlite', 'postgres'] as const)
      for (const label of labelsOf(hot.filter((r) => r.backend === backend))) {
        const h = hot.filter((r) => r.backend === backend && r.label === label)
        const plain = runsOf(results, backend, 'vigia', label.replace(/, thresholds breached$/, ''))
        out.push(
          `| ${label}, ${BACKENDS[backend].title} | ${show(perSecond(h), rate)} | ${show(perSecond(plain), rate)} | ${show(paired(h, plain), times)} | ${us(spread(h.map(cpuPerReading)).median)} / ${us(spread(plain.map(cpuPerReading)).median)} | ${h.map((r) => r.openAnomalies ?? '–').join(', ')} | ${delivered(h)} |`,
        )
      }
    out.push('')
  }
  const long = results.ingest.filter((r) => r.sustained)
  if (long.length) {
    out.push(
      ...tableHead(
        "#### Sustained batch ingest, with the event log's retention running",
        "The batch-of-1,000 run held longer on a fresh server of each database (`bench/phases/sustained.ts`): the short runs end before the event log's first retention pass (every 10 s), this one goes through several. Beside the same database's short run.",
        [
          'how',
          'readings/s',
          'short run: readings/s',
          'sustained / short',
          'server CPU per reading (µs): sustained / short',
          'events in the log at the end (retention count)',
          'every reading delivered',
        ],
      ),
    )
    for (const r of long) {
      const short = runsOf(results, r.backend, 'vigia', BATCH_LABEL)
      const ratio = spread(short.map((s) => r.perSecond / s.perSecond))
      out.push(
        `| ${r.label}, ${BACKENDS[r.backend].title} | ${rate(r.perSecond)} | ${show(perSecond(short), rate)} | ${show(ratio, times)} | ${us(cpuPerReading(r))} / ${us(spread(short.map(cpuPerReading)).median)} | ${rate(r.sustained!.events)} (${rate(r.sustained!.retentionCount)}) | ${delivered([r])} |`,
      )
    }
    out.push('')
  }
  return out
}

/** The short batch run a sustained one is compared with. */
const BATCH_LABEL = 'batch of 1,000, 4 in flight'

/** A table's heading, its introduction and its header row. */
function tableHead(heading: string, intro: string, columns: string[]) {
  return [heading, '', intro, '', ...header(...columns)]
}

export function webhookTables(results: Results): string[] {
  const out: string[] = []
  if (results.webhooks.length)
    out.push(
      ...header(
        'endpoints',
        'events',
        'deliveries/s',
        'event → delivery p50 / p99 (ms)',
        'delivered',
        'signatures',
      ),
      ...results.webhooks.map(
        (w) =>
          `| ${w.endpoints} | ${w.events} | ${rate(w.perSecond)} | ${ms(w.latency.p50)} / ${ms(w.latency.p99)} | ${w.deliveries}/${w.expected} | ${w.signed ? 'all valid' : '**invalid**'} |`,
      ),
      '',
    )
  const cost = results.ingest.filter((r) => r.webhook)
  if (cost.length) {
    const none = cost.filter((r) => r.webhook === 'none')
    out.push(
      ...header(
        'batch ingest (SQLite, fleet)',
        'readings/s',
        'cost: no webhook / this (run by run)',
        'every reading delivered',
      ),
    )
    for (const kind of ['none', 'anomalies', 'readings'] as const) {
      const rs = cost.filter((r) => r.webhook === kind)
      if (rs.length === 0) continue
      out.push(
        `| ${rs[0]!.label} | ${show(perSecond(rs), rate)} | ${show(paired(none, rs), times)} | ${delivered(rs)} |`,
      )
    }
    out.push('')
  }
  return out
}

export interface Goal {
  goal: string
  measured: string
  met: boolean | undefined
}

/**
 * What a second instance could add on this machine: the one-instance run's processes (server, PostgreSQL,
 * senders) already used part of its cores, so at the same CPU per reading two instances store at most
 * cores / (what that run used) as much. Two instances' CPU per reading (all processes) was 4 % lower to
 * 12 % higher for batches and 22-44 % higher for single POSTs (smaller groups) in session 28's runs.
 */
export function hostBound(results: Results, one: IngestRun[]) {
  const cores = results.meta.machine.cores
  const usedByRun = one.map((r) => r.cpu.machine - r.cpu.others)
  const used = spread(usedByRun)
  if (!Number.isFinite(used.median) || !cores) return ''
  const bound = spread(usedByRun.map((u) => (cores * 100) / u))
  return `; this host's bound at the same CPU per reading: ${show(bound, times)} (the one-instance run's processes used ${show(used, pct)} of its ${cores * 100}%)`
}

const best = (results: Results, backend: string, label: string) =>
  perSecond(runsOf(results, backend, 'vigia', label)).median

/** The targets of issues 13–17 that this run measured (or says why it could not). */
export function moreGoals(results: Results): Goal[] {
  const list: Goal[] = []
  const skipped = (what: string) => results.skipped.find((s) => s.what.startsWith(what))
  const add = (goal: string, s: Spread, measured: string, met: boolean) =>
    list.push(
      Number.isFinite(s.median)
        ? { goal, measured, met }
        : { goal, measured: 'not measured in this run', met: undefined },
    )
  const b1000 = 'batch of 1,000, 4 in flight'
  const minimal = `${b1000}, Prefer: return=minimal`
  const s64 = 'single POST, 64 senders'
  const vars = results.meta.fleet?.vars ?? 2
  const load = `fleet of ${results.meta.fleet?.sensors ?? '?'} sensors, ${vars} variables`
  for (const [backend, name, ref, goal] of [
    ['sqlite', 'SQLite', 'plain bun:sqlite', 0.9],
    ['postgres', 'PostgreSQL', 'plain postgres.js', 0.6],
  ] as const) {
    const v = runsOf(results, backend, 'vigia', b1000)
    const r = runsOf(results, backend, 'reference', b1000)
    const ratio = paired(v, r)
    // Judged on the batches answered in full; the gateway's way (no answer body) is shown beside it.
    const mv = runsOf(results, backend, 'vigia', minimal)
    const mr = runsOf(results, backend, 'reference', minimal)
    const m = paired(mv, mr)
    add(
      `batch ingest on ${name} ≥ ${goal} × ${ref} writing the same rows (${load})`,
      ratio,
      `${show(ratio, times)} run by run (medians: ${rate(perSecond(v).median)} vs ${rate(perSecond(r).median)} readings/s); server CPU per reading ${show(pairedCpu(v, r), times)} the reference's` +
        (Number.isFinite(m.median)
          ? `; with Prefer: return=minimal ${show(m, times)} (server CPU per reading ${show(pairedCpu(mv, mr), times)})`
          : ''),
      ratio.median >= goal && v.every((x) => x.verified),
    )
  }
  const sq = perSecond(runsOf(results, 'sqlite', 'vigia', b1000))
  add(
    `batch ingest on SQLite ≥ 100,000 readings/s (${load})`,
    sq,
    `${rate(sq.median)} readings/s`,
    sq.median >= 100_000,
  )
  for (const [backend, name, goal] of [
    ['sqlite', 'SQLite', 25_000],
    ['postgres', 'PostgreSQL', 20_000],
  ] as const) {
    const s = perSecond(runsOf(results, backend, 'vigia', s64))
    const b = perSecond(results.ingest.filter((r) => r.system === 'bare' && r.label === s64))
    add(
      `single POST at 64 in flight on ${name} ≥ ${rate(goal)} readings/s (${load})`,
      s,
      `${rate(s.median)} readings/s` +
        (Number.isFinite(b.median)
          ? ` (this host's ceiling, the bare Bun.serve server storing nothing, in the same run: ${rate(b.median)}/s)`
          : ''),
      s.median >= goal,
    )
  }
  for (const label of [s64, b1000]) {
    const one = runsOf(results, 'postgres', 'vigia', label)
    const ratio = paired(runsOf(results, 'postgres-2', 'vigia', label), one)
    add(
      `two instances ≥ 1.6 × one on PostgreSQL, ${label}`,
      ratio,
      `${show(ratio, times)} run by run (medians: ${rate(best(results, 'postgres-2', label))} vs ${rate(best(results, 'postgres', label))} readings/s)${hostBound(results, one)}`,
      ratio.median >= 1.6,
    )
  }
  if (results.realtime.length) {
    const v = results.realtime.filter((r) => r.target === 'vigia')
    const b = new Map(
      results.realtime.filter((r) => r.target === 'bun').map((r) => [r.round, r.cpuPerDeliveryUs]),
    )
    const ratio = spread(v.map((r) => r.cpuPerDeliveryUs / (b.get(r.round) ?? NaN)))
    add(
      `realtime at the limit (${v[0]?.subscribers} subscribers × ${v[0]?.events} events): server CPU per delivery ≤ 1.1 × bare Bun.serve`,
      ratio,
      `${show(ratio, times)} round by round (medians: ${spread(v.map((r) => r.cpuPerDeliveryUs)).median.toFixed(3)} vs ${spread([...b.values()]).median.toFixed(3)} µs)`,
      ratio.median <= 1.1 && v.every((r) => r.verified),
    )
  }
  const latest = results.latest[0]
  if (latest)
    list.push({
      goal: `GET /api/v1/latest for 10,000 sensors < 50 ms`,
      measured: `median ${ms(latest.p50)} ms, p99 ${ms(latest.p99)} ms (${latest.label})`,
      met: latest.p50 < 50,
    })
  else if (skipped('latest'))
    list.push({
      goal: 'GET /api/v1/latest for 10,000 sensors < 50 ms',
      measured: skipped('latest')!.why,
      met: undefined,
    })
  const sqliteHistory = results.history.find((h) => h.engine === 'sqlite')
  for (const [i, label] of [
    [0, '30-day aggregate of one sensor in 1 h buckets'],
    [1, '24 h aggregate at 1-minute buckets'],
  ] as const) {
    const t = sqliteHistory?.aggregate[i]
    const goal = `${label} < 50 ms median on SQLite (10 M readings)`
    if (t)
      list.push({
        goal,
        measured: `${ms(t.p50)} ms on ${sqliteHistory!.readings.toLocaleString('en-US')} readings`,
        met: t.p50 < 50 && t.status === 200,
      })
    else if (skipped('history: aggregate'))
      list.push({ goal, measured: skipped('history: aggregate')!.why, met: undefined })
  }
  for (const h of results.history) {
    const engine = h.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'
    if (h.export)
      list.push({
        goal: `export ≥ 200k rows/s, server memory growing < 64 MB (${engine})`,
        measured: `${rate(h.export.perSecond)} rows/s, +${h.export.rssGrowthMb.toFixed(1)} MB over ${h.export.rows.toLocaleString('en-US')} rows`,
        met: h.export.perSecond >= 200_000 && h.export.rssGrowthMb < 64,
      })
    if (h.import)
      list.push({
        goal: `import ≥ 50k rows/s (${engine})`,
        measured: `${rate(h.import.perSecond)} rows/s${h.import.runs && h.import.runs.length > 1 ? ` (median of ${h.import.runs.map(rate).join(', ')})` : ''} (status ${h.import.status})`,
        met: h.import.perSecond >= 50_000 && h.import.status < 300,
      })
  }
  if (skipped('history: export'))
    list.push({
      goal: 'export ≥ 200k rows/s, server memory growing < 64 MB',
      measured: skipped('history: export')!.why,
      met: undefined,
    })
  if (skipped('history: import'))
    list.push({
      goal: 'import ≥ 50k rows/s',
      measured: skipped('history: import')!.why,
      met: undefined,
    })
  const none = results.ingest.filter((r) => r.webhook === 'none')
  const one = results.ingest.filter((r) => r.webhook === 'anomalies')
  if (one.length) {
    const cost = paired(none, one)
    add(
      'ingest cost of one active webhook (on anomalies) ≤ 1.1 × none',
      cost,
      `${show(cost, times)} run by run`,
      cost.median <= 1.1,
    )
  } else if (skipped('webhooks'))
    list.push({
      goal: 'ingest cost of one active webhook ≤ 1.1 × none',
      measured: skipped('webhooks')!.why,
      met: undefined,
    })
  return list
}
