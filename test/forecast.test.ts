// The forecaster on its own: model choice by holdout error, intervals, resampling, and refusal on
// too little history.
import { describe, expect, test } from 'bun:test'
import { forecastReadings, resample, type Point } from '../src/intelligence/forecast'
import { gaussian, generate, rng, temperatureSpec } from '../scripts/synthetic'

const START = Date.UTC(2025, 6, 1)
const MIN = 60_000
const BOUNDS = { min: -273.15, max: 1000 }

const points = (values: number[], step = MIN): Point[] =>
  values.map((x, i) => ({ t: START + i * step, x }))

describe('the forecaster', () => {
  test('chooses a trend model over naive on a trended series, and its holdout error is lower', () => {
    const rand = rng(5)
    const trended = Array.from({ length: 400 }, (_, i) => 20 + 0.05 * i + 0.2 * gaussian(rand))
    const out = forecastReadings(points(trended), 60, BOUNDS)
    if (!out.ok) throw new Error(out.reason)
    expect(out.selection.chosen).toBe('holt')
    const { holt, naive } = out.selection.evaluations
    expect(holt.mae!).toBeLessThan(naive.mae!)
    // 60 minutes ahead the trend has climbed about 3 degrees; naive would stay flat.
    expect(out.points.at(-1)!.value).toBeGreaterThan(trended.at(-1)! + 2)
  })

  test('chooses Holt-Winters on days of a daily cycle and beats naive 4 hours ahead', () => {
    const values = generate(temperatureSpec(START, 5 * 1440), [], 2).values
    const out = forecastReadings(points(values), 240, BOUNDS)
    if (!out.ok) throw new Error(out.reason)
    expect(out.selection.chosen).toBe('holt_winters')
    expect(out.selection.evaluations.holt_winters.mae!).toBeLessThan(
      out.selection.evaluations.naive.mae!,
    )
  })

  test('gives every point an interval around it that widens with the horizon', () => {
    const rand = rng(9)
    const values = Array.from({ length: 300 }, () => 50 + gaussian(rand))
    const out = forecastReadings(points(values), 30, { min: 0, max: 100 })
    if (!out.ok) throw new Error(out.reason)
    expect(out.points).toHaveLength(30)
    for (const p of out.points) {
      expect(p.lower).toBeLessThanOrEqual(p.value)
      expect(p.upper).toBeGreaterThanOrEqual(p.value)
    }
    const width = (i: number) => out.points[i]!.upper - out.points[i]!.lower
    expect(width(29)).toBeGreaterThanOrEqual(width(0))
    expect(out.points[0]!.t).toBe(START + 300 * MIN)
  })

  test('refuses to forecast from too little history and says how much it needs', () => {
    const out = forecastReadings(points([20, 21, 22, 21, 20]), 60, BOUNDS)
    expect(out.ok).toBe(false)
    if (out.ok) return
    expect(out.reason).toContain('Not enough history')
    expect(out.reason).toContain('60-minute')
  })

  test('uses a coarser step for long horizons and for sparse sensors', () => {
    const values = Array.from({ length: 600 }, (_, i) => 20 + Math.sin(i / 20))
    const week = forecastReadings(points(values, 30 * MIN), 3 * 1440, BOUNDS)
    if (!week.ok) throw new Error(week.reason)
    expect(week.stepMinutes).toBeGreaterThanOrEqual(30)
    expect(week.points.length).toBeLessThanOrEqual(288)
  })

  test('resamples irregular readings into a regular grid, filling gaps by interpolation', () => {
    const { values, end } = resample(
      [
        { t: 0, x: 10 },
        { t: 60_000, x: 12 },
        { t: 240_000, x: 18 },
      ],
      MIN,
    )
    expect(end).toBe(240_000)
    expect(values).toEqual([10, 12, 14, 16, 18])
  })
})
