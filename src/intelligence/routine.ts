// Routine spikes: a spike the series makes at about the same time every day, at about the same size (a
// nightly backup, a cron job, a batch load), is the series' routine, not news. The variable keeps its
// spike onsets of the last few days (time and value, a short list in the JSON state); a spike onset
// that matches one on most of the last days grades at the floor (grade.ts). It never decides whether a
// hit is raised: production raises the spike as before, it only ranks last.

import { DAY } from './season'

/** Days looked back, and on how many of them a matching spike must have come. */
export const ROUTINE_DAYS = 3
const ROUTINE_NEEDED = 2
/** How close in time of day (ms) and in value (share of the value) a spike on an earlier day must be. */
const ROUTINE_TIME = 20 * 60_000
const ROUTINE_VALUE = 0.25
/** At most this many onsets kept (a bursty series' days: the oldest go first). */
const ROUTINE_KEPT = 24

/** Spike onsets of the last ROUTINE_DAYS days: time (ms) and value, flat, oldest first. */
export type Routine = number[]

/** Whether a spike onset at time t of value x matches spike onsets on ROUTINE_NEEDED of the last
 *  ROUTINE_DAYS days (the same time of day within ROUTINE_TIME, the same value within ROUTINE_VALUE). */
export function routine(kept: Routine, t: number, x: number) {
  let days = 0
  for (let d = 1; d <= ROUTINE_DAYS; d++) {
    const then = t - d * DAY
    for (let i = 0; i < kept.length; i += 2)
      if (
        Math.abs(kept[i]! - then) <= ROUTINE_TIME &&
        Math.abs(kept[i + 1]! - x) <= ROUTINE_VALUE * Math.abs(x)
      ) {
        days += 1
        break
      }
  }
  return days >= ROUTINE_NEEDED
}

/** Keeps a spike onset, forgetting those older than the days looked back (and the oldest past the cap). */
export function keepSpike(kept: Routine, t: number, x: number) {
  const since = t - ROUTINE_DAYS * DAY - ROUTINE_TIME
  let drop = 0
  while (drop < kept.length && kept[drop]! < since) drop += 2
  if (kept.length - drop >= 2 * ROUTINE_KEPT) drop = kept.length - 2 * ROUTINE_KEPT + 2
  kept.splice(0, drop)
  kept.push(t, x)
}
