// Contextual novelty (context.ts): the levels a variable's readings fall on, the pairs of them it has
// been in, and the higher grade of a hit in a context it has never been in; it grades, it raises nothing.
import { describe, expect, test } from 'bun:test'
import { learnContext, newContext } from '../src/intelligence/context'
import { detectorOptions, step } from '../src/intelligence/detector'
import { gradeScore } from '../src/intelligence/grade'
import { reviveState } from '../src/intelligence/state'
import { calmDay, MIN, START } from './detector-kit'

describe('contextual novelty', () => {
  test('a step between levels the variable has been in is familiar, a new pair is not, and a reading beyond the range seen is a level of its own', () => {
    const c = newContext()
    for (const x of [0, 100, 0]) learnContext(c, x, false)
    for (const x of [50, 20, 50, 20]) learnContext(c, x)
    expect(learnContext(c, 50)).toBe(true)
    expect(learnContext(c, 20)).toBe(true)
    // 20 has always been followed by 50.
    expect(learnContext(c, 20)).toBe(false)
    expect(learnContext(c, 20)).toBe(true)
    // Above everything seen: new, then the range widens to take it.
    expect(learnContext(c, 300)).toBe(false)
    expect(c.hi).toBe(300)
  })

  test('learns pairs only once told to (a warm detector); before, only the range and the level move', () => {
    const c = newContext()
    for (const x of [0, 100, 0, 100]) expect(learnContext(c, x, false)).toBe(true)
    expect(c.seen.every((w) => w === 0)).toBe(true)
    expect([c.lo, c.hi]).toEqual([0, 100])
    expect(learnContext(c, 0)).toBe(false)
    expect(learnContext(c, 100)).toBe(false)
    expect(learnContext(c, 0)).toBe(true)
  })

  test('grades a hit in a familiar context at 0.7 of the same hit in a context the variable has never been in', () => {
    const fresh = gradeScore(0.8, 1, 0, 0, 0.5)
    const familiar = gradeScore(0.8, 1, 0, 0, 0.5, true)
    expect(fresh).toBeGreaterThan(familiar)
    expect(familiar - 0.5).toBeCloseTo(0.7 * (fresh - 0.5), 5)
    expect(familiar).toBeGreaterThan(0.5)
  })

  test('a jump above everything a calm day has shown is a new context and grades higher than the same jump where the pair is known; the same readings hit', () => {
    const { values, state } = calmDay()
    const stored = JSON.stringify(state)
    const jump = values[1439]! + 6
    const at = START + 1440 * MIN
    const novel = step(reviveState(JSON.parse(stored)), at, jump, null, detectorOptions())
    const known = reviveState(JSON.parse(stored))
    known.ctx.seen = known.ctx.seen.map(() => (1 << 25) - 1)
    const familiar = step(known, at, jump, null, detectorOptions())
    expect(novel.map((h) => h.kind)).toEqual(['spike'])
    expect(familiar.map((h) => h.kind)).toEqual(['spike'])
    expect(novel[0]!.score).toBeGreaterThan(familiar[0]!.score)
    expect(familiar[0]!.score).toBeGreaterThanOrEqual(0.5)
  })

  test('a stored state from before the context set revives with a fresh one and keeps raising hits', () => {
    const { values, state } = calmDay()
    const stored = JSON.parse(JSON.stringify(state))
    delete stored.ctx
    const revived = reviveState(stored)
    expect(revived.ctx).toEqual(newContext())
    const hits = step(revived, START + 1440 * MIN, values[1439]! + 6, null, detectorOptions())
    expect(hits.map((h) => h.kind)).toEqual(['spike'])
    expect(revived.ctx.lo).not.toBeNull()
  })
})
