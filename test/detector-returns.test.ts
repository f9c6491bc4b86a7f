// Spikes that keep coming back inside one lasting episode (returns.ts): the first return grades as a
// kind coming back does (above the floor), the next ones, no more severe, at the floor (0.5, what
// production raises); they are still hits.
import { describe, expect, test } from 'bun:test'
import { detectorOptions, step } from '../src/intelligence/detector'
import { patternReturn } from '../src/intelligence/returns'
import { newState, reviveState } from '../src/intelligence/state'
import { generate, temperatureSpec } from '../scripts/synthetic'
import { MIN, START } from './detector-kit'

describe('spikes coming back inside an episode', () => {
  test('counts spike returns only, and calls the second one on a pattern', () => {
    const ep = newState().episode
    expect(patternReturn(ep, 'drift')).toBe(false)
    expect(patternReturn(ep, 'spike')).toBe(false)
    expect(patternReturn(ep, 'spike')).toBe(true)
    expect(ep.returns).toBe(2)
  })

  test('a state stored without the count revives as main stored it and counts from none', () => {
    const state = reviveState(JSON.parse(JSON.stringify(newState())))
    expect(state.episode.returns).toBeUndefined()
    expect(patternReturn(state.episode, 'spike')).toBe(false)
  })

  test('in a lasting shift, the first spike back is graded, the next ones hit at the floor', () => {
    const values = generate(temperatureSpec(START, 1440 * 4), [], 5).values
    const from = 1440 * 3
    const spikes = [from + 100, from + 180, from + 260]
    const state = newState()
    const scores: number[] = []
    values.forEach((x, i) => {
      const shifted = i >= from && i < from + 400 ? x + 4 : x
      const hits = step(
        state,
        START + i * MIN,
        spikes.includes(i) ? shifted + 6 : shifted,
        null,
        detectorOptions(),
      )
      if (spikes.includes(i)) scores.push(hits.find((h) => h.rule === 'statistical')?.score ?? 0)
    })
    // The first spike is the episode getting worse, the second the first return, the third a pattern.
    expect(scores).toHaveLength(3)
    expect(scores[0]).toBeGreaterThan(0.5)
    expect(scores[1]).toBeGreaterThan(0.5)
    expect(scores[2]).toBe(0.5)
    // The episode ended: its count went with it.
    expect(state.episode.returns).toBeUndefined()
  })
})
