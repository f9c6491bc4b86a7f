// The spike rule's level and the detector's time of day take fast paths (sorting networks, a floor instead
// of %); these check them value for value against the plain formulas, odd values included.
import { describe, expect, test } from 'bun:test'
import { localLevel, slide } from '../src/intelligence/level'
import { DAY, timeOfDay } from '../src/intelligence/season'

/** Median of a copy sorted the plain way: the order statistic the level is defined by. */
function median(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2
}

function plainLevel(ts: number[], xs: number[], t: number) {
  const n = xs.length
  if (n < 5) return null
  const third = Math.max(2, Math.floor(n / 3))
  const dt = median(ts.slice(n - third)) - median(ts.slice(0, third))
  const slope = dt > 0 ? (median(xs.slice(n - third)) - median(xs.slice(0, third))) / dt : 0
  return median(xs) + slope * (t - median(ts))
}

/** A random value: mostly noise around a level, sometimes a repeat, a zero, an infinity or a huge step. */
function value(previous: number) {
  const r = Math.random()
  if (r < 0.1) return previous
  if (r < 0.13) return 0
  if (r < 0.14) return Math.random() < 0.5 ? Infinity : -Infinity
  if (r < 0.16) return previous + (Math.random() - 0.5) * 1e6
  return Math.round((previous + (Math.random() - 0.5) * 2) * 100) / 100
}

describe('localLevel', () => {
  test('gives the level of the plain sorted medians for any window, zeros and infinities included', () => {
    for (let trial = 0; trial < 20_000; trial++) {
      const n = 5 + Math.floor(Math.random() * 14)
      const ts: number[] = []
      const xs: number[] = []
      let t = 1_700_000_000_000
      let x = Math.random() * 40 - 20
      for (let i = 0; i < n; i++) {
        t += 1000 + Math.floor(Math.random() * 3) * 500
        x = value(x)
        ts.push(t)
        xs.push(x)
      }
      const at = t + 1000
      const level = localLevel(ts, xs, at)
      const plain = plainLevel(ts, xs, at)
      // NaN from infinities on both sides is a NaN either way; otherwise the very same number.
      if (Number.isNaN(plain)) expect(level).toBeNaN()
      else expect(level).toBe(plain!)
    }
  })

  test('slides the window in place: the newest reading appended, the oldest dropped once full', () => {
    const ts: number[] = []
    const xs: number[] = []
    for (let i = 1; i <= 20; i++) {
      slide(ts, xs, i * 1000, i, 15)
      const kept = Math.min(i, 15)
      expect(xs).toEqual(Array.from({ length: kept }, (_, k) => i - kept + 1 + k))
      expect(ts).toEqual(xs.map((v) => v * 1000))
    }
  })
})

describe('timeOfDay', () => {
  test('places any instant in its day as the remainder formula does', () => {
    const instants = [0, DAY - 1, DAY, -1, -DAY, 1.5, -0.25, 2 ** 53 + 2, 1_733_000_000_123]
    for (let i = 0; i < 50_000; i++) instants.push(Math.floor(Math.random() * 4e12))
    for (const t of instants) expect(timeOfDay(t)).toBe(((t % DAY) + DAY) % DAY)
  })
})
