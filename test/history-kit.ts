// The history tests' reference: aggregates computed by brute force over every raw reading, a seeded
// random source, and a comparison that allows only floating-point rounding in sums and means.
import { expect } from 'bun:test'

export interface Raw {
  id: number
  sensor_id: number
  t: number
  values: Record<string, number>
}

const UNIT = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const

export const mulberry32 = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0
  let x = Math.imul(seed ^ (seed >>> 15), 1 | seed)
  x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
  return ((x ^ (x >>> 14)) >>> 0) / 4294967296
}

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')

/** CONTRACT §8 computed from scratch: [from, to), buckets at UTC epoch multiples, time then sensor order. */
export function bruteForce(
  raw: Raw[],
  sensors: number[],
  variable: string,
  from: number,
  to: number,
  bucket: string,
  fns: string[],
) {
  const size = Number(bucket.slice(0, -1)) * UNIT[bucket.slice(-1) as keyof typeof UNIT]
  const groups = new Map<string, Raw[]>()
  for (const r of raw) {
    if (!sensors.includes(r.sensor_id) || r.t < from || r.t >= to) continue
    if (r.values[variable] === undefined) continue
    const start = Math.floor(r.t / size) * size
    const key = `${start}|${String(r.sensor_id).padStart(10, '0')}`
    groups.set(key, [...(groups.get(key) ?? []), r])
  }
  return [...groups.keys()]
    .sort((a, b) => Number(a.split('|')[0]) - Number(b.split('|')[0]) || a.localeCompare(b))
    .map((key) => {
      const rows = groups.get(key)!
      const values = rows.map((r) => r.values[variable]!)
      const byTime = [...rows].sort((a, b) => a.t - b.t || a.id - b.id)
      const sum = values.reduce((a, b) => a + b, 0)
      const all: Record<string, number> = {
        avg: sum / values.length,
        min: Math.min(...values),
        max: Math.max(...values),
        count: values.length,
        sum,
        first: byTime[0]!.values[variable]!,
        last: byTime[byTime.length - 1]!.values[variable]!,
      }
      const row: Record<string, unknown> = {
        sensor_id: rows[0]!.sensor_id,
        variable,
        bucket: iso(Number(key.split('|')[0])),
      }
      for (const fn of fns) row[fn] = all[fn]
      return row as { sensor_id: number; bucket: string } & Record<string, number>
    })
}

/** The same rows in the same order; sums and means equal up to rounding, everything else exactly. */
export function sameRows(actual: Record<string, unknown>[], expected: Record<string, unknown>[]) {
  const loose = (rows: Record<string, unknown>[]) =>
    rows.map(({ sum, avg, ...rest }) => ({
      ...rest,
      sum: sum !== undefined,
      avg: avg !== undefined,
    }))
  expect(loose(actual)).toEqual(loose(expected))
  actual.forEach((row, i) => {
    for (const fn of ['sum', 'avg'])
      if (row[fn] !== undefined) {
        const want = expected[i]![fn] as number
        expect(Math.abs((row[fn] as number) - want)).toBeLessThanOrEqual(
          1e-9 * Math.max(1, Math.abs(want)),
        )
      }
  })
}

/** A stored rollup row, as either database's table hands it back. */
interface RollupRow {
  sensor_id: number
  variable: string
  bucket: number
  count: number
  sum: number
  min: number
  max: number
  first: number
  last: number
}

/**
 * A rollup table (`size` ms buckets) holds exactly the buckets of these sensors and variables the raw
 * readings fill, each equal to its brute-force computation (sums up to rounding).
 */
export function expectRollups(
  stored: RollupRow[],
  raw: Raw[],
  sensors: number[],
  variables: string[],
  size: number,
) {
  const fns = ['count', 'sum', 'min', 'max', 'first', 'last']
  const expected = new Map<string, Record<string, number>>()
  for (const variable of variables)
    for (const row of bruteForce(raw, sensors, variable, 0, 4e12, `${size / 1000}s`, fns))
      expected.set(`${row.sensor_id}|${variable}|${Date.parse(row.bucket)}`, row)
  expect(stored.length).toBe(expected.size)
  for (const r of stored) {
    const e = expected.get(`${r.sensor_id}|${r.variable}|${r.bucket}`)
    expect(e).toBeDefined()
    expect([r.count, r.min, r.max, r.first, r.last]).toEqual([
      e!.count,
      e!.min,
      e!.max,
      e!.first,
      e!.last,
    ])
    expect(r.sum).toBeCloseTo(e!.sum!, 9)
  }
}
