// How strong a statistical finding is: a statistic over its limit bounded to (0, 1), and the graded score
// a hit carries (0.5 at its rule's limit, higher the further past it and the rarer, newer and less
// likely the finding is on this variable). Grading ranks hits; it never decides whether one is raised.

export const bounded = (ratio: number) => ratio / (1 + ratio)
export const strength = (ratio: number) => Math.round((1000 * ratio) / (1 + ratio)) / 1000

/** Smoothing of the onset rate: about the last 5,000 readings. */
export const RARE_ALPHA = 1 / 5000
/** Onsets in that span at which rarity halves a score's grade. */
const RARE_HALF = 4
/** Decay per reading of the strongest recent finding: about the last 1,000 readings. */
export const PEAK_ALPHA = 1 / 1000
/** A hit in a context the variable has been in before (context.ts) grades this much of a new one's. */
const FAMILIAR = 0.7
/** A hit while the series is restless (days.ts: the last day's or the last hours' mean step well past the
 *  earlier days') grades this many times one in ordinary times. */
const RESTLESS_GRADE = 1.5

/** What an episode's later hit weighs against its onset. */
export const LATER = 0.25
/** A spike whose previous reading was already this share of the way from the expected level to it rose
 *  over two readings or more: the burst began before the finding, which grades as its later hit. */
export const RISE_SHARE = 0.1
/** An episode's first readings after its onset are its burst's climb: a later hit there weighs LATER of
 *  a later hit's weight. */
export const CLIMB = 5

/** Whether x, a spike off `center`, came after a reading already RISE_SHARE of the way to it (the same
 *  side, from the same expected level): a bursty series' rise, not a sudden break. */
export const risen = (previous: number | null, center: number, x: number) =>
  previous !== null && x !== center && (previous - center) / (x - center) >= RISE_SHARE

/**
 * What a hit weighs against an onset: 1 for an onset, for a hit of a lasting episode (`first`) and for a
 * kind coming back inside one (`back`), LATER for an episode's later hit and for a spike that rose to
 * its finding (`rose`, see `risen`: the burst began at the reading before), and LATER of that for a
 * later hit fewer than CLIMB readings after its episode's onset (`age`): the burst's climb to its peak,
 * which the onset has reported; nothing for a routine spike (`usual`, routine.ts: the same time of day
 * and size as spikes on the last days) and for spikes coming back again inside one episode (also
 * `usual`, returns.ts: the episode's own pattern).
 */
export function weightOf(first: boolean, back: boolean, rose: boolean, age: number, usual = false) {
  if (usual) return 0
  if (back) return 1
  if (first) return rose ? LATER : 1
  return age < CLIMB ? LATER * LATER : LATER
}

/**
 * A hit's score in [0.5, 1): 0.5 plus half its grade, where the grade is how far past its limit it is
 * (s = r / (1 + r) mapped to [0, 1)) times how rare onsets are on this variable (1 / (1 + onsets in about
 * the last 5,000 readings / 4)), halved unless it is stronger than every finding in about the last
 * 1,000 readings, times its weight against an onset (`weightOf`: a quarter for an episode's later hits
 * unless the episode has lasted two episode gaps, when a lasting condition grades as an onset does), and times the anomaly likelihood of
 * the error (tail.ts: HTM's form, 0 while the recent error is ordinary for this variable), and 0.7 of
 * that when the step to this reading is a context the variable has been in (context.ts), and 1.5 times
 * it while the series is restless (days.ts: moving more, or less, than on the earlier days). A bursty
 * variable's hits grade low, a quiet one's first finding high; 0.5 stays every hit's floor, so
 * score ≥ 0.5 is still exactly what production raises.
 */
export function gradeScore(
  s: number,
  weight: number,
  rate: number,
  peak: number,
  lik: number,
  familiar = false,
  restless = false,
) {
  const past = 2 * s - 1
  const rarity = 1 / (1 + rate / RARE_ALPHA / RARE_HALF)
  const grade =
    (0.25 + 0.75 * past) *
    rarity *
    weight *
    (s > peak ? 1 : 0.5) *
    lik *
    (familiar ? FAMILIAR : 1) *
    (restless ? RESTLESS_GRADE : 1)
  return Math.round(1e6 * (0.5 + 0.5 * Math.min(grade, 0.998))) / 1e6
}
