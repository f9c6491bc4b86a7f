// The detector calibrates itself on each series (no per-variable constants), learns what its hour of
// day looks like, speaks once per episode, and restarts cleanly from a state of an older version.
import { describe, expect, test } from 'bun:test'
import { detectorOptions, step, type Hit } from '../src/intelligence/detector'
import { newState, reviveState } from '../src/intelligence/state'
import { learnLikelihood, newLikelihood } from '../src/intelligence/tail'
import { gaussian, generate, rng, temperatureSpec } from '../scripts/synthetic'

const START = Date.UTC(2025, 6, 1)
const MIN = 60_000
const DAY = 1440

function run(values: number[], options = detectorOptions()) {
  const state = newState()
  const hits: { i: number; hit: Hit }[] = []
  values.forEach((x, i) => {
    for (const hit of step(state, START + i * MIN, x, null, options)) hits.push({ i, hit })
  })
  return { state, hits, at: hits.map((h) => h.i) }
}

const noisy = (n: number, noise: () => number) => {
  return Array.from({ length: n }, () => Math.round((50 + noise()) * 10) / 10)
}

/** A calm series whose readings 3000–3075 jump every 15: a spike episode under way at reading 3080. */
function spikyEpisode() {
  const values = generate(temperatureSpec(START, 3 * DAY), [], 7).values
  for (let i = 3000; i < 3080; i += 15) values[i] = values[i - 1]! + 2.5
  const state = newState()
  const options = detectorOptions()
  values.slice(0, 3080).forEach((x, i) => step(state, START + i * MIN, x, null, options))
  return { values, state, options }
}

describe('self-calibration', () => {
  test('needs no per-variable setting: the same readings in other units raise the same hits', () => {
    const values = generate(
      temperatureSpec(START, 3 * DAY),
      [
        { kind: 'spike', at: 2000, length: 1, magnitude: 1.5 },
        { kind: 'stuck', at: 3000, length: 60, magnitude: 0 },
      ],
      1,
    ).values
    const celsius = run(values)
    const milli = run(values.map((x) => x * 1000 + 500_000))
    expect(celsius.at.length).toBeGreaterThanOrEqual(2)
    expect(milli.at).toEqual(celsius.at)
    expect(milli.hits.map((h) => h.hit.kind)).toEqual(celsius.hits.map((h) => h.hit.kind))
  })

  test('on heavy-tailed noise raises fewer spikes than a fixed 5σ limit, and still the jump far beyond', () => {
    const rand = rng(7)
    // Student's t with 3 degrees of freedom: a Gaussian over the root of a scaled chi-square.
    const values = noisy(
      8000,
      () => gaussian(rand) / Math.sqrt(Math.max(1e-3, (-2 * Math.log(rand())) / 3)),
    )
    values[7000] = 450
    const calibrated = run(values)
    const fixed = run(values, { ...detectorOptions(), tailTimes: 0 })
    expect(calibrated.at).toContain(7000)
    expect(calibrated.at.length).toBeLessThan(0.8 * fixed.at.length)
    expect(calibrated.state.spike.q99).toBeGreaterThan(3)
  })

  test('scores a hit 0.5 at its rule’s limit and more the further past it', () => {
    const values = generate(temperatureSpec(START, DAY), [], 3).values
    values[600] = values[599]! + 1.5
    values[900] = values[899]! + 6
    const { hits } = run(values)
    const [near, far] = [600, 900].map((i) => hits.find((h) => h.i === i)!.hit.score)
    expect(near).toBeGreaterThanOrEqual(0.5)
    expect(far).toBeGreaterThan(near!)
    expect(far).toBeLessThan(1)
  })

  test('scores the same jump lower on a variable that has been finding something every few hundred readings', () => {
    const base = generate(temperatureSpec(START, 5 * DAY), [], 4).values
    const jump = (values: number[], i: number) => (values[i] = values[i - 1]! + 6)
    const quiet = [...base]
    jump(quiet, 6000)
    const bursty = [...base]
    for (let i = 1000; i < 6000; i += 250) jump(bursty, i)
    jump(bursty, 6000)
    const scoreAt = (values: number[]) => run(values).hits.find((h) => h.i === 6000)!.hit.score
    const [calm, busy] = [scoreAt(quiet), scoreAt(bursty)]
    expect(busy).toBeGreaterThanOrEqual(0.5)
    expect(busy).toBeLessThan(calm - 0.1)
  })

  test('grades by likelihood: an error as usual as ever scores low, a run of errors far above it near 1', () => {
    const rand = rng(6)
    const l = newLikelihood()
    const usual: number[] = []
    for (let i = 0; i < 3000; i++) usual.push(learnLikelihood(l, 0.2 + 0.1 * rand()))
    expect(Math.max(...usual.slice(200))).toBeLessThan(0.5)
    const unusual = Array.from({ length: 10 }, () => learnLikelihood(l, 0.9))
    expect(unusual[9]!).toBeGreaterThan(0.9)
    expect(unusual[9]!).toBeLessThanOrEqual(1)
  })

  test('finds a run of errors each under its rule’s limit but together far beyond the recent error', () => {
    const rand = rng(8)
    const values = noisy(5000, () => gaussian(rand))
    // Readings swinging ±4σ about the level: no spike (5σ), no drift (they average out), no envelope yet.
    for (let i = 4000; i < 4030; i++) values[i] = 50 + (i % 2 ? 4 : -4)
    const found = run(values).hits.filter((h) => h.i >= 4000)
    const without = run(values, {
      ...detectorOptions(),
      unlikelyZ: Infinity,
      unlikelyYoungZ: Infinity,
    })
    expect(without.hits.filter((h) => h.i >= 3000)).toEqual([])
    expect(found.length).toBeGreaterThan(0)
    expect(found[0]!.i).toBeLessThan(4030)
    expect(found[0]!.hit.kind).toBe('drift')
    expect(found[0]!.hit.score).toBeGreaterThan(0.5)
    expect(run(values).hits.filter((h) => h.i >= 3000 && h.i < 4000)).toEqual([])
  })

  test('holds the unlikely-error rule to its higher limit until the multi-day level has three daily means', () => {
    const options = { ...detectorOptions(), unlikelyYoungZ: Infinity }
    expect(detectorOptions().unlikelyZ).toBeLessThan(detectorOptions().unlikelyYoungZ)
    const burst = (at: number) => {
      const rand = rng(8)
      const values = noisy(at + 600, () => gaussian(rand))
      for (let i = at; i < at + 30; i++) values[i] = 50 + (i % 2 ? 4 : -4)
      return run(values, options).hits.filter((h) => h.i >= at - 1000)
    }
    // Reading 4000 is on the third day (two daily means), 4400 on the fourth (three).
    expect(burst(4000)).toEqual([])
    const later = burst(4400)
    expect(later.length).toBeGreaterThan(0)
    expect(later[0]!.i).toBeGreaterThanOrEqual(4400)
    expect(later[0]!.hit.message).toContain('further from what was expected')
  })

  test('grades a later hit of an episode that has lasted two episode gaps as an onset, and a state without the episode’s start dates it from now', () => {
    const { values, state, options } = spikyEpisode()
    expect(state.episode.severity).not.toBeNull()
    const stored = JSON.parse(JSON.stringify(state))
    expect(stored.episode.start).toBe(3000)
    const escalate = (s: typeof state) =>
      step(s, START + 3080 * MIN, values[3079]! + 12, null, options)[0]!.score
    const lasting = escalate(reviveState(JSON.parse(JSON.stringify(stored))))
    const young = reviveState(JSON.parse(JSON.stringify(stored)))
    young.episode = { ...young.episode, start: 3070 } as typeof young.episode
    const withoutStart = reviveState(JSON.parse(JSON.stringify(stored)))
    delete (withoutStart.episode as { start?: number }).start
    const [early, unknown] = [escalate(young), escalate(withoutStart)]
    expect(early).toBeGreaterThan(0.5)
    // The same hit, a quarter of its grade while the episode is young; dated from now, it is in the
    // episode's first readings (its climb, grade.ts `weightOf`): a quarter of that.
    expect(lasting - 0.5).toBeCloseTo(4 * (early - 0.5), 4)
    expect(early - 0.5).toBeCloseTo(4 * (unknown - 0.5), 4)
  })

  test('a kind the episode has not shown for two episode gaps raises a hit again (graded without the likelihood); a state without `at` dates its kinds from now', () => {
    const { values, state, options } = spikyEpisode()
    expect(state.episode.kinds).toEqual(['spike'])
    const stored = JSON.parse(JSON.stringify(state))
    expect(stored.episode.at).toEqual([3075])
    // The same spike as the episode's earlier ones: no escalation, so it hits only when spikes are old news.
    const spike = (s: typeof state) =>
      step(s, START + 3080 * MIN, values[3079]! + 2.5, null, options).filter(
        (h) => h.kind === 'spike',
      )
    expect(spike(reviveState(JSON.parse(JSON.stringify(stored))))).toEqual([])
    const old = reviveState(JSON.parse(JSON.stringify(stored)))
    old.episode.at = [3080 - 2 * options.episodeGap - 1]
    const back = spike(old)
    expect(back).toHaveLength(1)
    // Graded without the likelihood, which has learned the episode's own error by now.
    expect(back[0]!.score).toBeGreaterThan(0.5)
    const withoutAt = reviveState(JSON.parse(JSON.stringify(stored)))
    delete withoutAt.episode.at
    expect(spike(withoutAt)).toEqual([])
    expect(withoutAt.episode.at as number[] | undefined).toEqual([3080])
  })

  test('a stored state from before the onset rate, the likelihood and the last foreseen step revives with none and keeps raising hits', () => {
    const values = generate(temperatureSpec(START, DAY), [], 5).values
    const state = newState()
    values.slice(0, 800).forEach((x, i) => step(state, START + i * MIN, x, null, detectorOptions()))
    const stored = JSON.parse(JSON.stringify(state))
    delete stored.onsets
    delete stored.lik
    delete stored.stepAt
    const revived = reviveState(stored)
    expect(revived.onsets).toBe(0)
    expect(revived.stepAt).toBeNull()
    expect(revived.lik).toEqual(newLikelihood())
    const hit = step(revived, START + 800 * MIN, values[799]! + 6, null, detectorOptions())
    // A fresh likelihood grades nothing for its first 100 readings: the hit is raised at the floor.
    expect(hit[0]?.score).toBe(0.5)
    expect(Number.isFinite(revived.onsets)).toBe(true)
    expect(revived.lik.k).toBe(1)
  })
})

describe('time of day', () => {
  test('learns a step the series takes at the same hour every day instead of flagging it daily (nor the window lagging behind it as a burst of errors)', () => {
    const rand = rng(3)
    const values = Array.from({ length: 5 * DAY }, (_, i) => {
      const minute = i % DAY
      return (minute >= 540 && minute < 1080 ? 70 : 20) + 0.5 * gaussian(rand)
    })
    const { at } = run(values)
    expect(at.filter((i) => i >= DAY)).toEqual([])
  })

  test('raises a drift when a reading leaves everything its hour of day has shown for a week', () => {
    const rand = rng(4)
    const night = 9 * DAY + 1080
    // At 18:00 the daily wave is at its lowest (15); that night it climbs, gently, to 24.5 instead.
    const values = Array.from({ length: night + 240 }, (_, i) => {
      const usual = 20 + 5 * Math.sin((2 * Math.PI * (i % DAY)) / DAY) + 0.2 * gaussian(rand)
      return i < night ? usual : usual + Math.min(1, (i - night) / 120) * (24.5 - 15)
    })
    // The drift chart would see it too; switched off, the envelope rule is seen alone.
    const { hits } = run(values, { ...detectorOptions(), driftK: 1e9 })
    expect(hits.length).toBeGreaterThan(0)
    expect(hits.every((h) => h.i >= night && h.hit.kind === 'drift')).toBe(true)
    expect(hits[0]!.hit.message).toContain('hour of day')
  })
})

describe('episodes', () => {
  test('a shift that lasts longer than `settle` readings becomes the new level and its episode ends', () => {
    const rand = rng(9)
    const values = noisy(6000, () => gaussian(rand)).map((x, i) => (i >= 3000 ? x + 30 : x))
    const endOf = (settle: number) => {
      const state = newState()
      const options = { ...detectorOptions(), settle }
      let end = -1
      values.forEach((x, i) => {
        step(state, START + i * MIN, x, null, options)
        if (i > 3000 && end < 0 && state.episode.severity === null) end = i
      })
      return end
    }
    const settled = endOf(detectorOptions().settle)
    expect(settled).toBeGreaterThan(3300)
    expect(settled).toBeLessThan(3000 + 3 * detectorOptions().settle)
    expect(endOf(Infinity)).toBeGreaterThan(5000)
  })

  test('a burst of spikes raises one hit, and readings count as normal only once it is over', () => {
    const rand = rng(5)
    const values = noisy(3000, () => 0.15 * gaussian(rand)).map((x) => x - 30)
    for (const k of [2000, 2003, 2006, 2009]) values[k] = 25
    const state = newState()
    const options = detectorOptions()
    const hits: number[] = []
    const normal: number[] = []
    values.forEach((x, i) => {
      if (step(state, START + i * MIN, x, null, options).length > 0) hits.push(i)
      normal.push(state.normal.statistical)
    })
    expect(hits).toEqual([2000])
    const gap = options.episodeGap
    expect(normal.slice(2009, 2009 + gap)).toEqual(Array(gap).fill(0))
    expect(normal[2009 + gap]).toBe(1)
  })

  test('a state of an older version starts over instead of being misread', () => {
    const old = { v: 2, n: 5000, profile: { m: Array(48).fill(21) }, bias: 3 }
    const revived = reviveState(JSON.parse(JSON.stringify(old)))
    expect(revived).toEqual(newState())
    const current = run(generate(temperatureSpec(START, DAY), [], 1).values).state
    expect(reviveState(JSON.parse(JSON.stringify(current)))).toEqual(current)
  })
})
