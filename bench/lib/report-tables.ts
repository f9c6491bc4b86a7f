// The report's tables for the realtime path at the limit (Vigía against the bare Bun.serve server, round by
// round), the latest values and the history (aggregates, export, import, rollups, retention).
import type { Results } from './results'
import { header, ms, rate, show, spread } from './report'
import { times } from './report-more'

export function realtimeTable(results: Results): string[] {
  const rounds = results.realtime
  if (rounds.length === 0) return []
  const of = (t: string) => rounds.filter((r) => r.target === t)
  const v = of('vigia')
  const b = new Map(of('bun').map((r) => [r.round, r.cpuPerDeliveryUs]))
  const ratio = spread(v.map((r) => r.cpuPerDeliveryUs / (b.get(r.round) ?? NaN)))
  const threads = (rs: typeof rounds) => {
    const t = rs.flatMap((x) => (x.threadsUsPerEvent ? [x.threadsUsPerEvent] : []))
    if (t.length === 0) return '–'
    const mean = (f: (x: (typeof t)[number]) => number) =>
      Math.round(t.reduce((a, x) => a + f(x), 0) / t.length)
    return `${mean((x) => x.loop)} / ${mean((x) => x.jit)} / ${mean((x) => x.other)}`
  }
  const row = (label: string, rs: typeof rounds, r: string) =>
    `| ${label} | ${show(spread(rs.map((x) => x.cpuPerDeliveryUs)), (n) => n.toFixed(3))} | ${r} | ${threads(rs)} | ${show(spread(rs.map((x) => x.deliveries / x.seconds)), rate)} | ${rs.every((x) => x.verified) ? 'all' : rs.map((x) => `${x.deliveries}/${x.expected}`).join('; ')} |`
  return [
    ...header(
      'server',
      'server CPU per delivery (µs)',
      'vs bare Bun.serve (round by round)',
      'CPU per event, event loop / JIT / other threads (µs, mean)',
      'deliveries/s',
      'every message delivered',
    ),
    row('Vigía, POST /readings', v, show(ratio, times)),
    row('Bun.serve minimal', of('bun'), '1.00×'),
  ]
}

/** The realtime rounds' warm-up: the plan's fixed part, and what the rounds took until compiled. */
export function warmupText(plan: Record<string, unknown>, rounds: Results['realtime']): string {
  const fixed = `${Number(plan.realtimeWarmupEvents ?? 0).toLocaleString('en-US')} warm-up events to 20 subscribers`
  const taken = rounds.flatMap((r) => (r.warmupEvents === undefined ? [] : [r.warmupEvents]))
  if (plan.realtimeWarmupMaxEvents === undefined || taken.length === 0) return fixed
  const of = (target: string) => {
    const n = rounds.filter((r) => r.target === target && r.warmupEvents !== undefined)
    return show(spread(n.map((r) => r.warmupEvents!)), (x) => Math.round(x).toLocaleString('en-US'))
  }
  return `at least ${fixed}, then more in chunks of a quarter of that until JSC's compiler threads used under 1 µs per event over two chunks in a row (at most ${Number(plan.realtimeWarmupMaxEvents).toLocaleString('en-US')}; Vigía took ${of('vigia')}, the bare server ${of('bun')})`
}

export function latestTable(results: Results): string[] {
  if (results.latest.length === 0) return []
  return [
    ...header(
      'request',
      'requests',
      'median (ms)',
      'p99 (ms)',
      'max (ms)',
      'sensors in the answer',
    ),
    ...results.latest.map(
      (t) =>
        `| ${t.label} | ${t.requests} | ${ms(t.p50)} | ${ms(t.p99)} | ${ms(t.max)} | ${t.rows ?? '–'} |`,
    ),
  ]
}

export function historyTables(results: Results): string[] {
  const out: string[] = []
  for (const h of results.history) {
    out.push(
      `#### ${h.engine === 'sqlite' ? 'SQLite' : 'PostgreSQL'}: ${h.readings.toLocaleString('en-US')} readings of ${h.sensors.toLocaleString('en-US')} sensors over 30 days`,
      '',
      `Written directly in ${h.buildSeconds.toFixed(0)} s${h.foldedAtBuild ? ` (with the first ${h.foldedAtBuild.toLocaleString('en-US')} folded into rollups by the server's own catch-up in large passes)` : ''}; the server then took ${h.settleSeconds.toFixed(0)} s to catch up ${h.foldedAtBuild ? `the last ${(h.readings - h.foldedAtBuild).toLocaleString('en-US')} readings` : 'what it keeps beside raw readings'} (until its CPU went quiet and, where it has rollups, their watermark reached the last reading). ${h.notes.join('; ')}`,
      '',
    )
    if (h.aggregate.length)
      out.push(
        ...header('aggregate', 'requests', 'median (ms)', 'p99 (ms)', 'status', 'rows'),
        ...h.aggregate.map(
          (t) =>
            `| ${t.label} | ${t.requests} | ${ms(t.p50)} | ${ms(t.p99)} | ${t.status} | ${t.rows ?? '–'} |`,
        ),
        '',
      )
    if (h.export)
      out.push(
        `Export (CSV, streamed): ${h.export.rows.toLocaleString('en-US')} rows in ${h.export.seconds.toFixed(2)} s, ${rate(h.export.perSecond)} rows/s, ${(h.export.bytes / 1e6).toFixed(1)} MB; server RSS grew ${h.export.rssGrowthMb.toFixed(1)} MB at most.`,
        '',
      )
    if (h.rollupCost) {
      const c = h.rollupCost
      const median = (xs: number[]) =>
        [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN
      out.push(
        `Ingest with rollups (${c.readings.toLocaleString('en-US')} fleet readings in batches of 1,000 into a fresh server, alternating): rollups off ${c.off.map(rate).join(', ')} readings/s, on ${c.on.map(rate).join(', ')} readings/s (${(median(c.off) / median(c.on)).toFixed(2)}× the time); the worker had folded everything ${c.catchUp.map((x) => x.toFixed(1)).join(', ')} s after the last batch.`,
        '',
      )
    }
    if (h.prune)
      out.push(
        `Write latency, batches of 100 POSTed one after the other for ${h.prune.seconds} s each: without retention p50 ${ms(h.prune.before.p50)} ms, p99 ${ms(h.prune.before.p99)} ms, worst ${ms(h.prune.before.max)} ms; restarted with READINGS_RETENTION=15d (pruning half the history, 500 readings per transaction) p50 ${ms(h.prune.during.p50)} ms, p99 ${ms(h.prune.during.p99)} ms, worst ${ms(h.prune.during.max)} ms.`,
        '',
      )
    if (h.import)
      out.push(
        h.import.runs && h.import.runs.length > 1
          ? `Import (CSV, ${h.import.runs.length} requests one after the other into successive time ranges): ${h.import.rows.toLocaleString('en-US')} rows each at ${h.import.runs.map(rate).join(', ')} rows/s (the first into a server that had not imported yet), median ${rate(h.import.perSecond)} rows/s (status ${h.import.status}).`
          : `Import (CSV, one request): ${h.import.rows.toLocaleString('en-US')} rows in ${h.import.seconds.toFixed(2)} s, ${rate(h.import.perSecond)} rows/s (status ${h.import.status}).`,
        '',
      )
  }
  return out
}
