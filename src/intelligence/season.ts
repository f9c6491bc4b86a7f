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

function binOf(t: number, bins: number) {
  const inDay = ((t % DAY) + DAY) % DAY
  return { pos: (inDay / DAY) * bins, day: Math.floor(t / DAY) }
}

/** The profile's value at t, interpolated between bin centres; null until both bins have a day. */
export function profileAt(p: Profile, t: number): number | null {
  const bins = p.m.length
  const shifted = binOf(t, bins).pos - 0.5
  const i0 = (Math.floor(shifted) + bins) % bins
  const a = p.m[i0]
  const b = p.m[(i0 + 1) % bins]
  if (a == null || b == null) return null
  const w = shifted - Math.floor(shifted)
  return a * (1 - w) + b * w
}

/** The mean of t's own bin (no interpolation: keeps a step the series takes at the same time each day). */
export function profileBin(p: Profile, t: number): number | null {
  return p.m[Math.floor(binOf(t, p.m.length).pos)] ?? null
}

/** Adds x to the bin being accumulated; leaving it folds its mean into the bin by `alpha`. */
export function learnProfile(p: Profile, t: number, x: number, alpha: number) {
  const { pos, day } = binOf(t, p.m.length)
  const bin = Math.floor(pos)
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

/**
 * How far x lies outside what its hour of day has shown, in widths of that hour's envelope (0 inside);
 * null until the hour has `minDays` days behind it.
 */
export function envelopeExcess(e: Envelope, t: number, x: number, minDays: number) {
  const bin = Math.floor(binOf(t, ENVELOPE_BINS).pos)
  const lo = e.lo[bin]
  const hi = e.hi[bin]
  if (lo == null || hi == null || e.days[bin]! < minDays || !(hi > lo)) return null
  const excess = x > hi ? x - hi : x < lo ? lo - x : 0
  return { ratio: excess / (hi - lo), lo, hi, days: e.days[bin]! }
}

export function learnEnvelope(e: Envelope, t: number, x: number) {
  const { pos, day } = binOf(t, ENVELOPE_BINS)
  const bin = Math.floor(pos)
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
