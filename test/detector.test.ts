// The anomaly detector on its own: spikes, stuck values, drifts and threshold rules, warm-up, and a
// state that comes back from JSON exactly as it left.
import { describe, expect, test } from 'bun:test'
import { detectorOptions, step, type Hit, type ThresholdRule } from '../src/intelligence/detector'
import { newState, reviveState } from '../src/intelligence/state'
import { generate, humiditySpec, temperatureSpec, type Injection } from '../scripts/synthetic'

const START = Date.UTC(2025, 6, 1)
const MIN = 60_000

function run(values: number[], rule: ThresholdRule | null = null, variable = 'temperatura') {
  const state = newState()
  const options = detectorOptions(variable)
  const hits: { i: number; hit: Hit }[] = []
  values.forEach((x, i) => {
    for (const hit of step(state, START + i * MIN, x, rule, options)) hits.push({ i, hit })
  })
  return { state, hits }
}

const series = (days: number, injections: Injection[] = [], seed = 1) =>
  generate(temperatureSpec(START, days * 1440), injections, seed).values

describe('the statistical detector', () => {
  test('catches a 10-sigma spike as a statistical spike on that very reading', () => {
    const at = 1000
    const { hits } = run(series(1, [{ kind: 'spike', at, length: 1, magnitude: 10 * 0.15 }]))
    expect(hits.map((h) => h.i)).toEqual([at])
    expect(hits[0]!.hit).toMatchObject({ rule: 'statistical', kind: 'spike' })
    expect(hits[0]!.hit.expected_max!).toBeLessThan(hits[0]!.hit.value)
  })

  test('raises nothing on clean multi-day series of temperature and humidity', () => {
    for (const seed of [1, 2, 3]) {
      expect(run(series(4, [], seed)).hits).toEqual([])
      const humidity = generate(humiditySpec(START, 4 * 1440), [], seed).values
      expect(run(humidity, null, 'humedad').hits).toEqual([])
    }
  })

  test('stays silent during warm-up, even on a wild first reading', () => {
    const values = series(1).slice(0, 25)
    values[20] = 80
    expect(run(values).hits).toEqual([])
  })

  test('flags a sensor stuck on one value, but not one that always reports the same value', () => {
    const at = 1200
    const stuck = run(series(1, [{ kind: 'stuck', at, length: 60, magnitude: 0 }]))
    expect(stuck.hits.length).toBeGreaterThan(0)
    expect(stuck.hits[0]!.hit.kind).toBe('stuck')
    expect(stuck.hits[0]!.i).toBeGreaterThan(at)
    expect(stuck.hits[0]!.i).toBeLessThan(at + 20)
    expect(run(Array(2000).fill(21.5)).hits).toEqual([])
  })

  test('flags a slow drift away from the learned daily profile while it is under way', () => {
    const at = 3 * 1440 + 600
    const { hits } = run(series(4, [{ kind: 'drift', at, length: 240, magnitude: 4 }]))
    const drift = hits.find((h) => h.hit.kind === 'drift')
    expect(drift).toBeDefined()
    expect(drift!.i).toBeGreaterThan(at)
    expect(drift!.i).toBeLessThan(at + 240)
  })

  test('resumes from a JSON round trip exactly where an uninterrupted detector would be', () => {
    const values = series(3, [
      { kind: 'spike', at: 2000, length: 1, magnitude: 3 },
      { kind: 'stuck', at: 3500, length: 40, magnitude: 0 },
    ])
    const whole = run(values)
    const options = detectorOptions('temperatura')
    let state = newState()
    const hits: number[] = []
    values.forEach((x, i) => {
      if (i % 500 === 0) state = reviveState(JSON.parse(JSON.stringify(state)))
      if (step(state, START + i * MIN, x, null, options).length > 0) hits.push(i)
    })
    expect(hits).toEqual([...new Set(whole.hits.map((h) => h.i))])
    expect(hits.length).toBeGreaterThan(0)
  })

  test('does not check readings older than the last one it saw', () => {
    const state = newState()
    const options = detectorOptions('temperatura')
    step(state, START + 10 * MIN, 20, { max: 30 }, options)
    expect(step(state, START, 99, { max: 30 }, options)).toEqual([])
  })
})

describe('threshold rules', () => {
  test('raise above max and below min, more severe the further out', () => {
    const rule = { min: 10, max: 30 }
    const { hits } = run([20, 31, 20, 5, 20, 45], rule)
    expect(hits.map((h) => [h.i, h.hit.kind, h.hit.severity])).toEqual([
      [1, 'above_max', 'minor'],
      [3, 'below_min', 'major'],
      [5, 'above_max', 'critical'],
    ])
    expect(hits[0]!.hit).toMatchObject({ rule: 'threshold', expected_min: 10, expected_max: 30 })
  })

  test('with for_readings, raise only once the breach has lasted that many readings', () => {
    const { hits } = run([31, 31, 20, 31, 31, 31, 31], { max: 30, for_readings: 3 })
    expect(hits.map((h) => h.i)).toEqual([5, 6])
  })

  test('with for_seconds, raise only once the breach has lasted that long', () => {
    const { hits } = run([31, 31, 31, 31], { max: 30, for_seconds: 120 })
    expect(hits.map((h) => h.i)).toEqual([2, 3])
  })

  test('count consecutive normal readings per rule, for auto-resolve', () => {
    const { state } = run([31, 20, 20, 20], { max: 30 })
    expect(state.normal.threshold).toBe(3)
  })
})
