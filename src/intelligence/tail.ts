// Self-calibration for the detector's rules: running percentiles of a rule's statistic in calm times
// (stochastic approximation, four numbers of JSON state). A rule's limit is a multiple of its own 99th
// percentile, never below a floor: on Gaussian noise the floor decides (nothing changes), on a bursty,
// heavy-tailed series the percentile does, so what happens every day there is no alarm.

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
