// Routine spikes (routine.ts): a spike onset at the time of day and size of spike onsets on two of the
// last three days grades at the floor (0.5, what production raises); it is still a hit, and a spike at
// another hour, or of another size, grades as before.
import { describe, expect, test } from 'bun:test'
import { detectorOptions, step } from '../src/intelligence/detector'
import { keepSpike, routine, ROUTINE_DAYS } from '../src/intelligence/routine'
import { DAY } from '../src/intelligence/season'
import { newState, reviveState } from '../src/intelligence/state'
import { generate, temperatureSpec } from '../scripts/synthetic'
import { MIN, START } from './detector-kit'

describe('routine spikes', () => {
  test('matches spikes on two of the last three days, near in time of day and in value', () => {
    const t = START + 10 * DAY
    const kept: number[] = []
    keepSpike(kept, t - 2 * DAY + 5 * MIN, 10.5)
    expect(routine(kept, t, 10)).toBe(false)
    keepSpike(kept, t - DAY - 10 * MIN, 9)
    expect(routine(kept, t, 10)).toBe(true)
    // Another size, or another time of day, is no routine.
    expect(routine(kept, t, 20)).toBe(false)
    expect(routine(kept, t + 3 * 60 * MIN, 10)).toBe(false)
  })

  test('forgets onsets older than the days it looks back', () => {
    const kept: number[] = []
    keepSpike(kept, START, 1)
    keepSpike(kept, START + (ROUTINE_DAYS + 1) * DAY, 2)
    expect(kept).toEqual([START + (ROUTINE_DAYS + 1) * DAY, 2])
  })

  test('a state stored without the kept onsets revives with none', () => {
    const stored = JSON.parse(JSON.stringify(newState()))
    delete stored.spikes
    expect(reviveState(stored).spikes).toEqual([])
  })

  test('a spike at the same hour every day still hits, and grades at the floor from the third day', () => {
    const days = 4
    const values = generate(temperatureSpec(START, 1440 * days), [], 5).values
    const state = newState()
    const scores: number[] = []
    let other = 0
    values.forEach((x, i) => {
      const at3 = i % 1440 === 180
      const at15 = i === 3 * 1440 + 900
      const hits = step(state, START + i * MIN, at3 || at15 ? x + 6 : x, null, detectorOptions())
      const hit = hits.find((h) => h.rule === 'statistical')
      if (at3 && i > 1440) scores.push(hit?.score ?? 0)
      if (at15) other = hit?.score ?? 0
    })
    // Day 2 (one earlier day's spike: graded), days 3 and 4 (two earlier days: routine).
    expect(scores).toHaveLength(3)
    expect(scores[0]).toBeGreaterThan(0.5)
    expect(scores[1]).toBe(0.5)
    expect(scores[2]).toBe(0.5)
    expect(other).toBeGreaterThan(0.5)
  })
})
