// The fleet page section of BENCHMARKS.md (issue 13): how far behind the page is at 200 readings/s.
import { header, ms } from './report'
import type { Goal } from './report-more'
import type { Results } from './results'

export const FLEET_PAGE_TEXT =
  'Chromium (headless, Debian’s) opens `/fleet.html` on a fleet of sensors (1,000 in the full and quick runs, 20 in the harness check) spread over 20 located places, each with a first reading of five variables; then readings of the realistic fleet arrive through `POST /api/v1/readings` at a fixed 200/s (each sensor every 5 s, all five variables) for a bounded time. Lag is timed per reading from the moment its POST leaves to the moment the page’s table shows its new temperatura (a MutationObserver in the page); the reference, in the same page and run, is a bare WebSocket on `readings` that only parses each event (transport, no rendering). The page’s own share of the lag is the table’s time minus the bare socket’s, reading by reading; the page falls behind when a reading is never shown or the median of its own share over the last fifth of the run is above twice that over the first fifth plus 100 ms (a lag that grows in both columns is the server’s or the machine’s, not the page’s).'

export function fleetPageTable(results: Results): string[] {
  const runs = results.fleetPage ?? []
  if (runs.length === 0) return []
  return [
    ...header(
      'sensors',
      'readings/s sent',
      'shown / timed',
      'page shows it: p50 / p99 / max (ms)',
      'bare socket has it: p50 / p99 (ms)',
      'first → last fifth p50, all / page’s own (ms)',
      'after the last send (ms)',
      'page load (ms)',
      'falls behind',
    ),
    ...runs.map(
      (r) =>
        `| ${r.sensors.toLocaleString('en-US')} | ${r.sentPerSecond.toFixed(0)} (${r.seconds} s${r.httpErrors ? `, ${r.httpErrors} errors` : ''}) | ${r.shown} / ${r.timed} | ${ms(r.dom.p50)} / ${ms(r.dom.p99)} / ${ms(r.dom.max)} | ${ms(r.transport.p50)} / ${ms(r.transport.p99)} | ${ms(r.earlyP50)} → ${ms(r.lateP50)} / ${ms(r.ownEarlyP50)} → ${ms(r.ownLateP50)} | ${ms(r.drainMs)} | ${ms(r.loadMs)} | ${r.behind ? '**yes**' : 'no'} |`,
    ),
  ]
}

/** Issue 13's figure: the page with 1,000 live sensors keeps up with 200 readings/s. */
export function fleetPageGoals(results: Results): Goal[] {
  const run = results.fleetPage?.find((r) => r.sensors >= 1000)
  if (!run) return []
  return [
    {
      goal: 'fleet page, 1,000 live sensors, keeps up with 200 readings/s in Chromium',
      measured: `${run.sentPerSecond.toFixed(0)} readings/s; shown p50 ${ms(run.dom.p50)} ms, p99 ${ms(run.dom.p99)} ms; ${run.shown}/${run.timed} shown`,
      met: !run.behind,
    },
  ]
}
