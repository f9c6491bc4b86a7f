// Multi-day level and volatility: the mean of the last 24 hours, and its mean step between readings,
// against the days before it. A day unlike the last two weeks' days (a holiday, a service gone quiet, a
// machine running hot or restless for a day) moves no single reading far from its neighbours or its hour
// of day, so the other rules miss it. The last day is kept as eight three-hour blocks (sums, counts and
// sums of absolute steps) plus the block under way; once a day the 24-hour figures feed running means
// and variances of daily figures. Plain JSON state; readings must come in time order.

import { DAY } from './season'

/** Blocks the last day is kept in (three hours each). */
const BLOCKS = 8
const SPAN = DAY / BLOCKS
/** Daily means the running mean and variance average over (about two weeks)… */
const DAYS_SPAN = 14
/** …and how many there must be before a day is compared with them. */
const DAYS_NEEDED = 7
/** Standard deviations of the daily means that make a day unlike the others. */
export const DAYS_K = 4
/** The daily means' spread is at least this share of the readings' spread around the 24-hour mean
 *  (a series that repeats itself exactly would otherwise call rounding a change). */
const SPREAD_FLOOR = 0.05
/** Standard deviations of the daily volatilities (mean absolute step) that make a day unlike the others,
 *  and their floor as a share of the mean volatility. */
export const VOL_K = 3.5
const VOL_FLOOR = 0.1
/** A day is restless from this share of the volatility rule's limit on, and the last hours are from this
 *  many times the earlier days' mean step on: a hit then grades higher (grade.ts). */
export const RESTLESS = 0.7
export const RESTLESS_HOURS = 1.4
/** Smoothing per reading of the readings' spread around the 24-hour mean. */
const SPREAD_ALPHA = 0.01

export interface Days {
  /** Sums and counts of the last BLOCKS complete blocks (oldest first), the block under way and its end. */
  s: number[]
  c: number[]
  bs: number
  bc: number
  end: number | null
  /** Blocks since the last daily mean was taken. */
  since: number
  /** Daily means taken, their running mean and variance, and the readings' spread around the last day. */
  n: number
  mu: number
  va: number
  spread: number
  /** The last 24-hour mean (null until a whole day is kept) and when the rule last fired. */
  m: number | null
  fired: number | null
  /** Volatility (added in session 11; reviveDays fills it in a state stored before): the previous
   *  reading, the blocks' sums of absolute steps, the block under way's, and the daily volatilities'
   *  count, running mean and variance. */
  p: number | null
  v: number[]
  bv: number
  wn: number
  wmu: number
  wva: number
}

export const newDays = (): Days => ({
  s: [],
  c: [],
  bs: 0,
  bc: 0,
  end: null,
  since: 0,
  n: 0,
  mu: 0,
  va: 0,
  spread: 0,
  m: null,
  fired: null,
  p: null,
  v: [],
  bv: 0,
  wn: 0,
  wmu: 0,
  wva: 0,
})

/** Six significant figures: what a closed block or a daily figure keeps (the state is stored with every
 *  reading). */
const fig = (x: number) => Number(x.toPrecision(6))

/**
 * Learns one reading and returns how far the last 24 hours' mean (in DAYS_K standard deviations of the
 * earlier days' means) or mean step (in VOL_K of theirs) is from the earlier days', whichever is
 * further (≥ 1: a day unlike the others; at most once a day), or -1 while there are fewer than
 * DAYS_NEEDED days behind it.
 */
export function learnDays(d: Days, t: number, x: number): number {
  d.end ??= t + SPAN
  const v = d.v
  while (t >= d.end) {
    d.s.push(fig(d.bs))
    d.c.push(d.bc)
    v.push(fig(d.bv))
    if (d.s.length > BLOCKS) {
      d.s.shift()
      d.c.shift()
      v.shift()
    }
    d.bs = 0
    d.bc = 0
    d.bv = 0
    d.end += SPAN
    // A whole day since the last daily mean: it joins the others (exactly 24 hours of blocks).
    if (++d.since >= BLOCKS && d.s.length === BLOCKS) {
      d.since = 0
      let sum = 0
      let cnt = 0
      let vol = 0
      for (let i = 0; i < BLOCKS; i++) {
        sum += d.s[i]!
        cnt += d.c[i]!
        vol += v[i]!
      }
      if (cnt > 0) {
        d.n += 1
        const a = 1 / Math.min(d.n, DAYS_SPAN)
        const dev = sum / cnt - d.mu
        d.mu += a * dev
        d.va = fig(d.n === 1 ? 0 : (1 - a) * (d.va + a * dev * dev))
        d.mu = fig(d.mu)
        // A negative count: the day's blocks predate the volatility (a revived state), not a day's.
        if ((d.wn += 1) > 0) {
          const b = 1 / Math.min(d.wn, DAYS_SPAN)
          const wdev = vol / cnt - d.wmu
          d.wmu += b * wdev
          d.wva = fig(d.wn === 1 ? 0 : (1 - b) * (d.wva + b * wdev * wdev))
          d.wmu = fig(d.wmu)
        }
      }
    }
  }
  d.bs += x
  d.bc += 1
  if (d.p !== null) d.bv += Math.abs(x - d.p)
  d.p = x
  if (d.s.length < BLOCKS) return -1
  if (d.m !== null) d.spread += SPREAD_ALPHA * (Math.abs(x - d.m) - d.spread)
  // The last 24 hours: the block under way, the complete ones, and of the oldest only the share the
  // block under way has not yet replaced.
  const kept = 1 - (d.end - t) / SPAN
  let sum = d.bs - kept * d.s[0]!
  let cnt = d.bc - kept * d.c[0]!
  for (let i = 0; i < BLOCKS; i++) {
    sum += d.s[i]!
    cnt += d.c[i]!
  }
  d.m = sum / cnt
  if (d.n < DAYS_NEEDED) return -1
  const ratio = Math.max(levelRatio(d), volRatio(d))
  if (ratio < 1 || (d.fired !== null && t - d.fired <= DAY)) return ratio < 1 ? ratio : 0
  d.fired = t
  return ratio
}

const levelRatio = (d: Days) =>
  Math.abs(d.m! - d.mu) / Math.max(Math.sqrt(d.va), SPREAD_FLOOR * d.spread, 1e-12) / DAYS_K

/** The mean absolute step over the complete blocks only: steps are not spread evenly over a block (a
 *  square wave has two a day), so counting a share of the oldest block would wobble with the hour. */
export function volatility(d: Days) {
  let vol = 0
  let cnt = 0
  for (let i = 0; i < BLOCKS; i++) {
    vol += d.v[i]!
    cnt += d.c[i]!
  }
  return cnt > 0 ? vol / cnt : null
}

export function volRatio(d: Days) {
  const vol = volatility(d)
  if (vol === null || d.wn < DAYS_NEEDED) return 0
  return Math.abs(vol - d.wmu) / Math.max(Math.sqrt(d.wva), VOL_FLOOR * d.wmu, 1e-12) / VOL_K
}

/**
 * Whether the series is restless: the last 24 hours' mean step at least RESTLESS of the way to the
 * volatility rule's limit (VOL_K standard deviations of the earlier days', in either direction), or the
 * last six to nine hours' (the two latest complete blocks and the one under way) RESTLESS_HOURS times the
 * earlier days' mean step or more. False until there are DAYS_NEEDED daily volatilities and a whole day
 * of blocks. No state of its own.
 */
export function restless(d: Days) {
  if (d.v.length < BLOCKS || d.wn < DAYS_NEEDED) return false
  if (volRatio(d) >= RESTLESS) return true
  const steps = d.v[BLOCKS - 2]! + d.v[BLOCKS - 1]! + d.bv
  const count = d.c[BLOCKS - 2]! + d.c[BLOCKS - 1]! + d.bc
  return count > 0 && steps >= RESTLESS_HOURS * d.wmu * count && d.wmu > 0
}

/** What a day finding says: the level, or the volatility, whichever is further out. */
export function dayMessage(d: Days, round: (x: number) => number) {
  if (levelRatio(d) >= volRatio(d))
    return `The last 24 hours' mean, ${round(d.m!)}, is ${(levelRatio(d) * DAYS_K).toFixed(1)} standard deviations from the earlier days' ${round(d.mu)}.`
  return `The last 24 hours' readings move ${round(volatility(d)!)} a step on average, ${(volRatio(d) * VOL_K).toFixed(1)} standard deviations from the earlier days' ${round(d.wmu)}.`
}

/** Fills the volatility into a state stored before it: its kept blocks count no steps, so the first
 *  daily volatility is left out. */
export function reviveDays(d: Days) {
  if (d.v) return d
  d.p = null
  d.v = d.s.map(() => 0)
  d.bv = 0
  d.wn = -1
  d.wmu = 0
  d.wva = 0
  return d
}
