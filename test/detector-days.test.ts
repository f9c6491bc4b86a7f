// Multi-day level and volatility (days.ts): the last 24 hours' mean and mean step against the earlier
// days', a hit of its own at most once a day, and its state stored and revived.
import { describe, expect, test } from 'bun:test'
import {
  learnDays,
  newDays,
  restless,
  RESTLESS,
  reviveDays,
  volatility,
  volRatio,
} from '../src/intelligence/days'
import { gradeScore } from '../src/intelligence/grade'
import { detectorOptions, step, type Hit } from '../src/intelligence/detector'
import { newState, reviveState } from '../src/intelligence/state'
import { generate, humiditySpec, temperatureSpec } from '../scripts/synthetic'

const START = Date.UTC(2025, 6, 1)
const STEP = 10 * 60_000
const PER_DAY = 144

/** Seeded Gaussian noise (LCG and Box–Muller), so every run sees the same series. */
function gaussian(seed: number) {
  let s = seed
  const u = () => ((s = (s * 1_664_525 + 1_013_904_223) % 2 ** 32) + 1) / (2 ** 32 + 1)
  return () => Math.sqrt(-2 * Math.log(u())) * Math.cos(2 * Math.PI * u())
}

/** A daily cycle (amplitude 10) with unit noise every 10 minutes; `shift` moves chosen days' level and
 *  `scale` their noise. */
function series(
  days: number,
  seed: number,
  shift: (day: number) => number = () => 0,
  scale: (day: number) => number = () => 1,
) {
  const noise = gaussian(seed)
  return Array.from({ length: days * PER_DAY }, (_, i) => {
    const day = Math.floor(i / PER_DAY)
    return 50 + 10 * Math.sin((2 * Math.PI * i) / PER_DAY) + shift(day) + scale(day) * noise()
  })
}

const dayHits = (hits: Hit[]) => hits.filter((h) => h.message.includes('24 hours'))

function run(values: number[]) {
  const state = newState()
  const found: number[] = []
  values.forEach((x, i) => {
    if (dayHits(step(state, START + i * STEP, x, null, detectorOptions())).length) {
      // The reading is not normal: the anomaly it opens does not resolve at once.
      expect(state.normal.statistical).toBe(0)
      found.push(i)
    }
  })
  return { state, found }
}

describe('multi-day level', () => {
  test('eight weeks of an ordinary daily cycle raise no day finding', () => {
    for (const seed of [1, 2, 3]) expect(run(series(56, seed)).found).toEqual([])
  })

  test("four weeks of eval:intelligence's synthetic temperature and humidity (weather, daily cycle) raise no day finding", () => {
    for (const spec of [temperatureSpec, humiditySpec])
      for (const seed of [1, 2]) {
        const values = generate(spec(START, 28 * 1440), [], seed).values
        const state = newState()
        let found = 0
        values.forEach((x, i) => {
          found += dayHits(step(state, START + i * 60_000, x, null, detectorOptions())).length
        })
        expect(found).toBe(0)
      }
  })

  test('a day whose level sits a few noise units low raises one drift hit during that day, and only once', () => {
    const { found } = run(series(24, 7, (day) => (day === 20 ? -4 : 0)))
    expect(found.length).toBe(1)
    const at = found[0]!
    expect(at).toBeGreaterThan(20 * PER_DAY)
    expect(at).toBeLessThan(21 * PER_DAY)
  })

  test('a day whose readings are twice as restless at the same level raises one drift hit during that day, and only once', () => {
    const { found, state } = run(series(24, 7, undefined, (day) => (day === 20 ? 2 : 1)))
    expect(found.length).toBe(1)
    expect(found[0]!).toBeGreaterThan(20 * PER_DAY)
    expect(found[0]!).toBeLessThan(21 * PER_DAY + PER_DAY / 8)
    expect(state.days!.wn).toBe(state.days!.n)
  })

  test('a day as restless as the others, at the same level, raises nothing though its noise is wide', () => {
    expect(run(series(24, 8, undefined, () => 3)).found).toEqual([])
  })

  test('compares nothing before seven daily means are behind it', () => {
    const d = newDays()
    for (let i = 0; i < 7 * PER_DAY; i++) expect(learnDays(d, START + i * STEP, i % 2)).toBe(-1)
    expect(d.n).toBe(6)
    expect(learnDays(d, START + 8 * PER_DAY * STEP, 0)).toBeGreaterThanOrEqual(0)
  })

  test('a state stored without `days` revives with a fresh one, and a stored one revives exactly', () => {
    const { state } = run(series(9, 4))
    const stored = JSON.parse(JSON.stringify(state))
    expect(reviveState(stored).days).toEqual(state.days)
    delete stored.days
    expect(reviveState(stored).days).toEqual(newDays())
  })

  test("a state stored before the volatility revives with it and judges no day's volatility until a week of whole days", () => {
    const { state } = run(series(9, 4))
    const stored = JSON.parse(JSON.stringify(state))
    for (const k of ['p', 'v', 'bv', 'wn', 'wmu', 'wva']) delete stored.days[k]
    const revived = reviveState(stored)
    expect(revived.days!.v).toEqual(state.days!.s.map(() => 0))
    expect(revived.days!.wn).toBe(-1)
    // Carried on with readings twice as restless as before: no day hit, since no volatility is known yet.
    const more = series(7, 5, undefined, () => 2)
    more.forEach((x, i) => {
      const hits = step(revived, START + (9 * PER_DAY + i) * STEP, x, null, detectorOptions())
      expect(dayHits(hits)).toEqual([])
    })
    expect(revived.days!.wn).toBe(6)
    expect(reviveDays(revived.days!)).toBe(revived.days!)
  })
})

describe('restless days', () => {
  /** 21 days of the cycle, the last one (all but its last reading) with its noise `scale` times as wide:
   *  at 1.15 its mean step is about 3 of the daily volatilities' standard deviations from theirs, short
   *  of the volatility rule's 3.5. */
  function restlessRun(scale: number) {
    const values = series(21, 7, undefined, (day) => (day === 20 ? scale : 1))
    const { state, found } = run(values.slice(0, 20 * PER_DAY + PER_DAY - 1))
    return { state, found }
  }

  test('a day with its noise 15 % wider than the others is restless as the others is restless (no finding of its own); an ordinary one is not', () => {
    const odd = restlessRun(1.15)
    expect(odd.found).toEqual([])
    expect(volRatio(odd.state.days!)).toBeGreaterThanOrEqual(RESTLESS)
    expect(volRatio(odd.state.days!)).toBeLessThan(1)
    expect(restless(odd.state.days!)).toBe(true)
    const plain = restlessRun(1)
    expect(restless(plain.state.days!)).toBe(false)
    expect(restless(newDays())).toBe(false)
  })

  test('six hours with noise 1.5 times as wide make the series restless within three hours, though the day is not', () => {
    // The cycle of `series`, its last six hours (from reading 108 of day 20) with noise 1.5 times as wide.
    const noise = gaussian(7)
    const values = Array.from(
      { length: 21 * PER_DAY },
      (_, i) =>
        50 +
        10 * Math.sin((2 * Math.PI * i) / PER_DAY) +
        (i >= 20 * PER_DAY + 108 ? 1.5 : 1) * noise(),
    )
    const d = newDays()
    let first = -1
    for (let i = 0; i < 21 * PER_DAY - 1; i++) {
      learnDays(d, START + i * STEP, values[i]!)
      if (i >= 20 * PER_DAY && first < 0 && restless(d)) first = i - 20 * PER_DAY
    }
    expect(first).toBeGreaterThanOrEqual(108)
    expect(first).toBeLessThanOrEqual(108 + 18)
    expect(volRatio(d)).toBeLessThan(RESTLESS)
    expect(restless(d)).toBe(true)
  })

  test('grades a hit on a restless day at 1.5 times the same hit on an ordinary day', () => {
    const ordinary = gradeScore(0.8, 1, 0, 0, 0.5, true)
    const restlessDay = gradeScore(0.8, 1, 0, 0, 0.5, true, true)
    expect(restlessDay - 0.5).toBeCloseTo(1.5 * (ordinary - 0.5), 5)
  })

  test('the same spike grades higher on a restless day than on an ordinary one; the same readings hit', () => {
    const { state } = restlessRun(1.15)
    const stored = JSON.stringify(state)
    const at = START + (21 * PER_DAY - 1) * STEP
    const jump = 50 + 10 * Math.sin((2 * Math.PI * (21 * PER_DAY - 1)) / PER_DAY) + 25
    const onRestless = step(reviveState(JSON.parse(stored)), at, jump, null, detectorOptions())
    const calm = reviveState(JSON.parse(stored))
    // The same state with the earlier days' volatility set to this day's: an ordinary day.
    calm.days!.wmu = volatility(calm.days!)!
    expect(restless(calm.days!)).toBe(false)
    const onCalm = step(calm, at, jump, null, detectorOptions())
    expect(onRestless.map((h) => h.kind)).toEqual(['spike'])
    expect(onCalm.map((h) => h.kind)).toEqual(['spike'])
    expect(onRestless[0]!.score).toBeGreaterThan(onCalm[0]!.score)
    expect(onCalm[0]!.score).toBeGreaterThanOrEqual(0.5)
  })
})
