// What the detector learns about time of day: the daily profile (a mean per bin, what the drift chart
// compares against) and the daily envelope (the lowest and highest reading seen per hour of day, with
// how many days fed each hour). Plain JSON state; readings must come in time order.

export const DAY = 86_400_000
const ENVELOPE_BINS = 24
/** Each new day an hour's envelope closes in by this share of its width: old extremes fade over months. */
const ENVELOPE_SHRINK = 0.01

export interface Profile {
  /** Per bin the learned mean (null until a day has passed through it), and the bin being accumulated. */
  m: (number | null)[]
  bin: number
  day: number
  sum: number
  cnt: number
}

export interface Envelope {
  lo: (number | null)[]
  hi: (number | null)[]
  /** Days seen per hour, and the last day each hour saw. */
  days: number[]
  last: number[]
}

export const newProfile = (bins: number): Profile => ({
  m: Array(bins).fill(null),
  bin: -1,
  day: -1,
  sum: 0,
  cnt: 0,
})

export const newEnvelope = (): Envelope => ({
  lo: Array(ENVELOPE_BINS).fill(null),
  hi: Array(ENVELOPE_BINS).fill(null),
  days: Array(ENVELOPE_BINS).fill(0),
  last: Array(ENVELOPE_BINS).fill(-1),
})

const round4 = (x: number) => Math.round(x * 10_000) / 10_000

/** Milliseconds since t's midnight (UTC). The detector works it out once per reading and hands it to
 *  the functions below. `%` on a timestamp (a double) calls fmod; for a whole, non-negative one the
 *  floor of the day gives the same remainder, and where it might not (a fraction of a millisecond, the
 *  floor off by one) `%` decides. */
export function timeOfDay(t: number) {
  const r = t - Math.floor(t / DAY) * DAY
  return t >= 0 && t <= Number.MAX_SAFE_INTEGER && Math.floor(t) === t && r >= 0 && r < DAY
    ? r
    : ((t % DAY) + DAY) % DAY
}

/** t's day (days since the epoch), which the bins' learning keys on. */
export const dayOf = (t: number) => Math.floor(t / DAY)

/** The profile's value at `inDay` (timeOfDay), interpolated between bin centres; null until both bins
 *  have a day. */
export function profileAt(p: Profile, inDay: number): number | null {
  const bins = p.m.length
  const shifted = (inDay / DAY) * bins - 0.5
  const i0 = (Math.floor(shifted) + bins) % bins
  const a = p.m[i0]
  const b = p.m[(i0 + 1) % bins]
  if (a == null || b == null) return null
  const w = shifted - Math.floor(shifted)
  return a * (1 - w) + b * w
}

/** The mean of `inDay`'s own bin (no interpolation: keeps a step the series takes at the same time each
 *  day). */
export function profileBin(p: Profile, inDay: number): number | null {
  return p.m[Math.floor((inDay / DAY) * p.m.length)] ?? null
}

/** Adds x to the bin being accumulated; leaving it folds its mean into the bin by `alpha`. */
export function learnProfile(p: Profile, inDay: number, day: number, x: number, alpha: number) {
  const bin = Math.floor((inDay / DAY) * p.m.length)
  if (p.bin !== bin || p.day !== day) {
    if (p.cnt > 0) {
      const mean = p.sum / p.cnt
      const old = p.m[p.bin]
      p.m[p.bin] = round4(old == null ? mean : old + alpha * (mean - old))
    }
    p.bin = bin
    p.day = day
    p.sum = 0
    p.cnt = 0
  }
  p.sum += x
  p.cnt += 1
}

/** The envelope's hour of `inDay`. */
export const envelopeBin = (inDay: number) => Math.floor((inDay / DAY) * ENVELOPE_BINS)

/**
 * How far x lies outside what its hour of day (`bin`) has shown, in widths of that hour's envelope (0
 * inside); -1 until the hour has `minDays` days behind it.
 */
export function envelopeExcess(e: Envelope, bin: number, x: number, minDays: number) {
  const lo = e.lo[bin]
  const hi = e.hi[bin]
  if (lo == null || hi == null || e.days[bin]! < minDays || !(hi > lo)) return -1
  const excess = x > hi ? x - hi : x < lo ? lo - x : 0
  return excess / (hi - lo)
}

export function learnEnvelope(e: Envelope, bin: number, day: number, x: number) {
  const lo = e.lo[bin]
  const hi = e.hi[bin]
  if (e.last[bin] !== day) {
    e.last[bin] = day
    e.days[bin]! += 1
    if (lo != null && hi != null) {
      const inward = ENVELOPE_SHRINK * (hi - lo)
      e.lo[bin] = lo + inward
      e.hi[bin] = hi - inward
    }
  }
  e.lo[bin] = e.lo[bin] == null ? x : Math.min(e.lo[bin]!, x)
  e.hi[bin] = e.hi[bin] == null ? x : Math.max(e.hi[bin]!, x)
}
