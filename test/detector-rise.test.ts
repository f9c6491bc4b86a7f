// Rises and climbs (grade.ts `risen`, `weightOf`): a spike whose previous reading was already a tenth of
// the way to it began before the finding, as a bursty series' rises do, and grades as its burst's later
// hit; a sudden break from the expected level grades as an onset. A later hit in the first CLIMB readings
// of its episode is the burst's climb and weighs a quarter of a later hit. They grade, they raise nothing.
import { describe, expect, test } from 'bun:test'
import { detectorOptions, step } from '../src/intelligence/detector'
import { CLIMB, LATER, RISE_SHARE, risen, weightOf } from '../src/intelligence/grade'
import { reviveState } from '../src/intelligence/state'
import { calmDay, MIN, START } from './detector-kit'

/** The calm day's last reading and its state, stored as JSON. */
function calm() {
  const { values, state } = calmDay()
  return { last: values[1439]!, stored: JSON.stringify(state) }
}

describe('rises', () => {
  test('a spike is risen when the previous reading was at least RISE_SHARE of the way to it, on its side', () => {
    expect(RISE_SHARE).toBe(0.1)
    expect(risen(10, 10, 20)).toBe(false)
    expect(risen(10.5, 10, 20)).toBe(false)
    expect(risen(11, 10, 20)).toBe(true)
    expect(risen(18, 10, 20)).toBe(true)
    // Downwards too; a previous reading on the other side is no rise.
    expect(risen(9, 10, 0)).toBe(true)
    expect(risen(11, 10, 0)).toBe(false)
    expect(risen(null, 10, 20)).toBe(false)
    expect(risen(10, 10, 10)).toBe(false)
  })

  test('the same spike grades as an onset after a reading at the level and as a later hit after one already rising; both hit', () => {
    const { last, stored } = calm()
    const at = START + 1440 * MIN
    const jump = last + 4
    const run = (before: number) => {
      const state = reviveState(JSON.parse(stored))
      const quiet = step(state, at, before, null, detectorOptions())
      return { quiet, hits: step(state, at + MIN, jump, null, detectorOptions()) }
    }
    const sudden = run(last)
    // Half a degree up first: about three robust standard deviations, short of a finding, and an eighth of
    // the way to the spike.
    const rising = run(last + 0.5)
    expect(sudden.quiet).toEqual([])
    expect(rising.quiet).toEqual([])
    expect(sudden.hits.map((h) => h.kind)).toEqual(['spike'])
    expect(rising.hits.map((h) => h.kind)).toEqual(['spike'])
    // Graded as an onset the rise would grade about twice as high as the sudden break (its recent error,
    // which the likelihood weighs, is already up); as a later hit, a quarter of that.
    expect(rising.hits[0]!.score).toBeLessThan(sudden.hits[0]!.score)
    expect(rising.hits[0]!.score).toBeGreaterThanOrEqual(0.5)
  })

  test('what a hit weighs against an onset', () => {
    expect([LATER, CLIMB]).toEqual([0.25, 5])
    expect(weightOf(true, false, false, 0)).toBe(1)
    expect(weightOf(true, false, true, 0)).toBe(LATER)
    expect(weightOf(true, true, true, 90)).toBe(1)
    expect(weightOf(false, false, false, CLIMB)).toBe(LATER)
    expect(weightOf(false, false, false, CLIMB - 1)).toBe(LATER * LATER)
    expect(weightOf(false, false, true, 1)).toBe(LATER * LATER)
  })

  test("an escalation in its episode's first readings grades below the same escalation later on; both hit", () => {
    const { last, stored } = calm()
    const at = START + 1440 * MIN
    const escalation = (after: number) => {
      const state = reviveState(JSON.parse(stored))
      const onset = step(state, at, last + 1.2, null, detectorOptions())
      for (let i = 1; i < after; i++) step(state, at + i * MIN, last, null, detectorOptions())
      return { onset, hits: step(state, at + after * MIN, last + 4, null, detectorOptions()) }
    }
    const climbing = escalation(2)
    const later = escalation(CLIMB + 2)
    for (const run of [climbing, later]) {
      expect(run.onset.map((h) => [h.kind, h.severity])).toEqual([['spike', 'minor']])
      expect(run.hits.map((h) => [h.kind, h.severity])).toEqual([['spike', 'major']])
    }
    expect(climbing.hits[0]!.score).toBeLessThan(later.hits[0]!.score)
    expect(climbing.hits[0]!.score).toBeGreaterThanOrEqual(0.5)
  })
})
