// Self-calibration for the detector's rules: running percentiles of a rule's statistic in calm times
// (stochastic approximation, four numbers of JSON state). A rule's limit is a multiple of its own 99th
// percentile, never below a floor: on Gaussian noise the floor decides (nothing changes), on a bursty,
// heavy-tailed series the percentile does, so what happens every day there is no alarm. Also the anomaly
// likelihood of the detector's error (HTM's form), which grades a hit's score.

/** Running 50th, 90th and 99th percentiles of a non-negative statistic, and how many values fed them. */
export interface Tail {
  q50: number
  q90: number
  q99: number
  k: number
}

/** A standard normal |z|: where a tail starts before the series has shown its own. */
export const newTail = (): Tail => ({ q50: 0.674, q90: 1.645, q99: 2.576, k: 0 })

/**
 * Moves the percentiles towards x. Each moves up by τ/(1 − τ) steps when exceeded and down by one
 * otherwise, so it settles where a share 1 − τ of values exceed it; steps are in units of the tail's
 * spread and shrink as 1/k down to `rate`.
 */
export function learnTail(tail: Tail, x: number, rate: number) {
  tail.k += 1
  const step = 0.1 * Math.max(rate, 1 / tail.k) * Math.max(tail.q99 - tail.q50, 1e-9)
  tail.q50 += step * (x > tail.q50 ? 1 : -1)
  tail.q90 += step * (x > tail.q90 ? 9 : -1)
  tail.q99 += step * (x > tail.q99 ? 99 : -1)
  if (tail.q50 < 0) tail.q50 = 0
  if (tail.q90 < tail.q50) tail.q90 = tail.q50
  if (tail.q99 < tail.q90) tail.q99 = tail.q90
}

/** A rule's limit: `times` its 99th percentile, never below `floor`. */
export const tailLimit = (tail: Tail, times: number, floor: number) =>
  Math.max(floor, times * tail.q99)

/** HTM's anomaly likelihood of a bounded error: its short mean and that mean's long-run mean and
 *  variance, and how many errors fed them. */
export interface Likelihood {
  s: number
  m: number
  v: number
  k: number
}

export const newLikelihood = (): Likelihood => ({ s: 0, m: 0, v: 0, k: 0 })

/** Smoothing of the short mean (about 10 readings) and of its long-run mean and variance (about 1,000). */
const SHORT = 0.1
const LONG = 1 / 1000

/** Gaussian upper tail probability (Abramowitz and Stegun 26.2.17, error below 1e-7). */
function upperTail(z: number) {
  const t = 1 / (1 + 0.2316419 * z)
  const d = 0.3989423 * Math.exp((-z * z) / 2)
  const q = d * t * (0.3193815 + t * (-0.3565638 + t * (1.781478 + t * (-1.821256 + t * 1.330274))))
  return Math.max(1e-12, q)
}

/** How many long-run standard deviations the short mean will be above its long-run mean once it takes
 *  this error (0 for the likelihood's first 100 readings): what `learnLikelihood` scores, unscaled. */
export function recentZ(l: Likelihood, error: number) {
  if (l.k <= 100) return 0
  return (l.s + SHORT * (error - l.s) - l.m) / Math.sqrt(Math.max(l.v, 1e-6))
}

const LOG_FLOOR = Math.log(1e-5)

/**
 * Takes this reading's error in [0, 1) and returns the likelihood score of the recent error, log-scaled
 * to [0, 1] as HTM scores it: log(q) / log(1e-5) for q the Gaussian tail probability of its short mean
 * under the long-run one (0.06 at or below the long-run mean, 1 at 1e-5 or less; 0 for the first 100
 * readings, and when `scored` is false: the caller has no use for it, the state learns all the same).
 */
export function learnLikelihood(l: Likelihood, error: number, scored = true): number {
  l.s += SHORT * (error - l.s)
  let score = 0
  if (scored && !(l.k <= 100)) {
    const z = (l.s - l.m) / Math.sqrt(Math.max(l.v, 1e-6))
    score = Math.min(1, Math.log(z <= 0 ? 0.5 : upperTail(z)) / LOG_FLOOR)
  }
  l.k += 1
  const a = Math.max(LONG, 1 / l.k)
  const d = l.s - l.m
  l.m += a * d
  l.v += a * (d * d - l.v)
  return score
}
