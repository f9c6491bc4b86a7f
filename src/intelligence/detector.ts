// Anomaly detection for one sensor variable, pure and synchronous: threshold rules (threshold.ts), plus statistical
// rules that calibrate themselves on the series, with no per-variable constants: spikes (robust z-score
// of the residual from the local level), stuck values, drifts (EWMA chart of the residual from the daily
// profile), readings outside what their hour of day has shown, and a recent error far beyond its own
// long run (a run of errors no rule finds one reading at a time). Limits grow with the series' own
// tails (tail.ts) and the statistical rules speak once per episode. All it knows lives in a plain JSON
// state object (state.ts).
import {
  DAY,
  dayOf,
  envelopeBin,
  envelopeExcess,
  learnEnvelope,
  learnProfile,
  profileAt,
  profileBin,
  timeOfDay,
} from './season'
import { localLevel, slide } from './level'
import { learnContext } from './context'
import { keepSpike, routine } from './routine'
import { patternReturn } from './returns'
import { dayMessage, learnDays, restless } from './days'
import { bounded, gradeScore, PEAK_ALPHA, RARE_ALPHA, risen, strength, weightOf } from './grade'
import { learnLikelihood, learnTail, recentZ, tailLimit } from './tail'
import { checkThreshold } from './threshold'
import { ewAlpha } from './smooth'
import type { VariableState } from './state'
import type { DetectorOptions } from './options'

export { DAY }
export { detectorOptions, type DetectorOptions } from './options'

export type Rule = 'threshold' | 'statistical'
export type Kind = 'above_max' | 'below_min' | 'spike' | 'stuck' | 'drift'
export type Severity = 'warning' | 'minor' | 'major' | 'critical'

const SEVERITY_RANK: Record<Severity, number> = { warning: 0, minor: 1, major: 2, critical: 3 }
export const higherSeverity = (a: Severity, b: Severity) =>
  SEVERITY_RANK[b] > SEVERITY_RANK[a] ? b : a

export interface ThresholdRule {
  min?: number | null
  max?: number | null
  /** The breach must last this many consecutive readings (default 1). */
  for_readings?: number
  /** …and span at least this many seconds from its first reading (default 0). */
  for_seconds?: number
}

export interface Hit {
  rule: Rule
  kind: Kind
  severity: Severity
  value: number
  expected_min: number | null
  expected_max: number | null
  message: string
  /** How strong the finding is, in (0, 1]: r / (1 + r) for a statistic r times its limit (0.5 at the limit). */
  score: number
}

const MINUTE = 60_000

const round = (x: number) => Math.round(x * 1000) / 1000
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x))

/** One remembering ewAlpha per call site (smooth.ts): the chart, the mean and the spread. */
const chartAlpha = ewAlpha()
const meanAlpha = ewAlpha()
const spreadAlpha = ewAlpha()

/** The run of one value as improbable as `probability` for a sensor that repeats a value at rate p0. */
const repeatRun = (p0: number, probability: number) =>
  p0 <= 0 ? 0 : p0 >= 0.999 ? Infinity : Math.log(probability) / Math.log(p0)

/**
 * A jump the daily profile makes at this hour every day (a shift starting, lights going on): both the
 * previous reading and this one sit on the profile (shifted by its current offset), each four times
 * closer to it than this reading is to the local level, which lags behind such a step.
 */
function foreseen(
  state: VariableState,
  inDay: number,
  x: number,
  previous: number | null,
  center: number,
) {
  const p = state.profile
  if (state.last === null || previous === null || state.drift.k === 0) return false
  const now = profileBin(p, inDay)
  const before = profileBin(p, timeOfDay(state.last))
  if (now === null || before === null) return false
  const near = 0.25 * Math.abs(x - center)
  const offset = state.drift.mean
  return Math.abs(x - now - offset) < near && Math.abs(previous - before - offset) < near
}

/** Severity by how far past its limit a statistic is: 2.4× major, 4.8× critical (a 5σ limit: 12σ, 24σ). */
const ratioSeverity = (ratio: number): Severity =>
  ratio >= 4.8 ? 'critical' : ratio >= 2.4 ? 'major' : 'minor'

/** This reading's statistical findings: one array for every call (step runs to its end before the
 *  next), since nearly every reading has none. */
const found: Hit[] = []

const worstOf = (hits: Hit[]) =>
  hits.reduce((a, b) => (SEVERITY_RANK[b.severity] > SEVERITY_RANK[a.severity] ? b : a))

/**
 * Checks one reading of one variable and learns from it. Mutates `state`; returns the hits (at most
 * one per rule). Readings must come in time order: an older one is neither checked nor learned.
 * A threshold rule hits on every breaching reading. The statistical rules hit when an episode starts
 * (the first finding after episodeGap readings without one) and when it turns more severe; while it
 * lasts no reading counts as normal, so the anomaly it opened stays open.
 */
export function step(
  state: VariableState,
  t: number,
  x: number,
  threshold: ThresholdRule | null,
  o: DetectorOptions,
): Hit[] {
  if (state.last !== null && t < state.last) return []
  const hits: Hit[] = []
  const thresholdHit = checkThreshold(state, t, x, threshold)
  if (thresholdHit) hits.push(thresholdHit)

  const warm = state.n >= o.warmup
  const inDay = timeOfDay(t)
  const today = dayOf(t)
  found.length = 0

  const previous = state.prev
  // The sensor's resolution bounds the noise scale from below (half its smallest step).
  if (state.prev !== null && x !== state.prev) {
    const d = Math.abs(x - state.prev)
    state.res = state.res === null ? d : Math.min(state.res, d)
  }
  state.prev = x
  const floor = Math.max((state.res ?? 0) / 2, 1e-9 * Math.abs(x), 1e-12)

  // A long silence breaks the local context: start the window again, keep the learned scale.
  if (state.ts.length >= 2 && state.last !== null) {
    const spacing = (state.last - state.ts[0]!) / (state.ts.length - 1)
    if (t - state.last > Math.max(6 * spacing, 10 * MINUTE)) {
      state.ts = []
      state.xs = []
    }
  }

  // Stuck: a run of one value that the sensor's own rate of repeats, and its own longest calm runs,
  // make improbable.
  const st = state.stuck
  const same = st.value !== null && Math.abs(x - st.value) <= 1e-9
  if (!same && st.run > 1 && state.episode.severity === null)
    st.longest = Math.max(st.longest, st.run)
  st.run = same ? st.run + 1 : 1
  st.value = x
  // The run the rate of repeats asks for matters only past the other two bounds (its logarithms are
  // skipped on nearly every reading).
  const bound = Math.max(o.stuckRun, Math.ceil(o.stuckMargin * st.longest))
  const needed =
    !warm || st.run < bound ? bound : Math.max(bound, repeatRun(st.p0, o.stuckProbability))
  const stuck = warm && st.run >= needed
  if (stuck)
    found.push({
      rule: 'statistical',
      kind: 'stuck',
      severity: st.run >= 10 * needed ? 'major' : st.run >= 3 * needed ? 'minor' : 'warning',
      value: x,
      expected_min: null,
      expected_max: null,
      message: `The value has not changed for ${st.run} readings; this sensor repeats a value ${Math.round(st.p0 * 100)}% of the time.`,
      score: strength(st.run / needed),
    })

  // Spike: robust z-score of the residual from the window's level and slope, past the series' own tail.
  const level = localLevel(state.ts, state.xs, t)
  const sigma = Math.max(state.mad * 1.2533, floor)
  const spikeLimit = tailLimit(state.spike, o.tailTimes, o.spikeZ)
  let spike = false
  let clipped = x
  let spikeZ = -1
  let foreseenStep = false
  let rise = false
  if (level !== null) {
    const center = level + state.bias
    const z = (x - center) / sigma
    const past = warm && state.k >= 10 && Math.abs(z) >= spikeLimit
    foreseenStep = past && foreseen(state, inDay, x, previous, center)
    spike = past && !foreseenStep
    spikeZ = Math.abs(z)
    rise = spike && risen(previous, center, x)
    if (spike) {
      clipped = center + Math.sign(z) * spikeLimit * sigma
      found.push({
        rule: 'statistical',
        kind: 'spike',
        severity: ratioSeverity(Math.abs(z) / spikeLimit),
        value: x,
        expected_min: round(center - spikeLimit * sigma),
        expected_max: round(center + spikeLimit * sigma),
        message: `${x} is ${Math.abs(z).toFixed(1)} robust standard deviations ${z > 0 ? 'above' : 'below'} the expected ${round(center)}.`,
        score: strength(Math.abs(z) / spikeLimit),
      })
    }
    if (!stuck) {
      const r = clipped - level
      state.k += 1
      const a = Math.max(o.scaleAlpha, 1 / state.k)
      const limit = state.k > 10 ? 3 * sigma : Infinity
      const dev = clamp(r - state.bias, -limit, limit)
      state.bias += a * dev
      state.mad += a * (Math.abs(dev) - state.mad)
    }
  }
  if (!stuck) slide(state.ts, state.xs, t, clipped, o.window)
  if (!stuck && !spike) {
    st.k += 1
    const a = Math.max(0.005, 1 / st.k)
    st.p0 += a * ((same ? 1 : 0) - st.p0)
  }

  // Daily envelope: further outside what this hour of day has shown than the hour's own spread.
  const env = state.envelope
  const hour = envelopeBin(inDay)
  const outside = envelopeExcess(env, hour, x, o.envelopeDays)
  if (warm && outside >= 0 && outside > o.envelopeTolerance) {
    const lo = env.lo[hour]!
    const hi = env.hi[hour]!
    found.push({
      rule: 'statistical',
      kind: 'drift',
      severity: ratioSeverity(outside / o.envelopeTolerance),
      value: x,
      expected_min: round(lo),
      expected_max: round(hi),
      message: `${x} is ${x > hi ? 'higher' : 'lower'} than this hour of day has been in ${env.days[hour]!} days (${round(lo)} to ${round(hi)}).`,
      score: strength(outside / o.envelopeTolerance),
    })
  }
  learnEnvelope(env, hour, today, x)

  // Drift: EWMA chart of the residual from the daily profile, against its own slow mean and spread.
  const dt = state.last === null ? 0 : t - state.last
  // The profile between bin centres, or the bin's own mean when that is closer: a series that steps at
  // the same hour every day is on its bin's mean, not on the slope interpolation draws across the step.
  const smooth = profileAt(state.profile, inDay)
  const own = profileBin(state.profile, inDay)
  const base =
    smooth === null || own === null || Math.abs(x - smooth) <= Math.abs(x - own) ? smooth : own
  let usual = !stuck && !spike
  let drifting = false
  let driftZ = -1
  const driftLimit = tailLimit(state.drift.tail, o.tailTimes, o.driftK)
  if (base !== null && usual) {
    const d = x - base
    const dr = state.drift
    const sd = Math.max(dr.mad * 1.2533, floor)
    const dev = d - dr.mean
    dr.e += chartAlpha(dt, o.driftChartTau) * (dev - dr.e)
    drifting = warm && dr.k >= o.warmup && Math.abs(dr.e) > driftLimit * sd
    if (drifting)
      found.push({
        rule: 'statistical',
        kind: 'drift',
        severity: ratioSeverity(Math.abs(dr.e) / (driftLimit * sd)),
        value: x,
        expected_min: round(base + dr.mean - driftLimit * sd),
        expected_max: round(base + dr.mean + driftLimit * sd),
        message: `Readings have drifted ${dr.e > 0 ? 'up' : 'down'} by ${Math.abs(dr.e).toFixed(2)} from this time of day's usual ${round(base + dr.mean)}.`,
        score: strength(Math.abs(dr.e) / (driftLimit * sd)),
      })
    // Unusual residuals do not teach the spread, and the mean only slowly (very slowly during an
    // alarm): a drift in progress must not become the new normal, a lasting shift does. An episode
    // older than `settle` readings is such a shift: the mean learns at its usual pace, so the alarm
    // ends and what comes next can open an episode of its own.
    usual = dr.k < o.warmup || (!drifting && Math.abs(dev) <= 3 * sd)
    if (dr.k >= o.warmup) driftZ = Math.abs(dr.e) / sd
    dr.k += 1
    const warming = dr.k <= o.warmup
    const { severity, start } = state.episode
    const settled = severity !== null && state.n - (start ?? state.n) >= o.settle
    const tau =
      usual || settled ? o.driftMeanTau : drifting ? 12 * o.driftMeanTau : 4 * o.driftMeanTau
    dr.mean += (warming ? 1 / dr.k : meanAlpha(dt, tau)) * (d - dr.mean)
    if (usual)
      dr.mad += (warming ? 1 / dr.k : spreadAlpha(dt, o.driftVarTau)) * (Math.abs(dev) - dr.mad)
  }
  // The profile learns usual readings; a bin with nothing yet takes any but stuck ones and a drift,
  // so a level the series jumps to at the same hour every day (a spike to the window) becomes known.
  if (usual || (!stuck && !drifting && own === null))
    learnProfile(state.profile, inDay, today, x, o.profileDayAlpha)

  // One episode per lasting condition: a hit when it starts, when it gets worse and when it shows a
  // kind it had not. The tails learn from calm readings only: an anomaly must not raise the bar.
  // `start` (the reading that opened it) and `at` (the reading that last showed each of its kinds) were
  // added within v3: a state stored without them dates the episode, and its kinds, from now.
  const ep = state.episode
  ep.at ??= ep.kinds.map(() => state.n)
  // The bounded error of this reading: the strongest of the spike, drift and envelope statistics
  // against their limits, r / (1 + r). While the window straddles a step the daily profile foresaw, its
  // level lags behind the step and the spike statistic is no error (a daily step would read as a burst).
  if (foreseenStep) state.stepAt = state.n
  const straddles = state.stepAt != null && state.n - state.stepAt < o.window
  const err = bounded(
    Math.max(
      spikeZ < 0 || straddles ? 0 : spikeZ / spikeLimit,
      driftZ < 0 ? 0 : driftZ / driftLimit,
      outside < 0 ? 0 : outside / o.envelopeTolerance,
    ),
  )
  // The recent error far beyond its own long run, with no rule at its limit: a condition the rules miss
  // one reading at a time (a burst of moderate errors, a shape the series has not had).
  const unlikely = recentZ(state.lik, err)
  const unlikelyLimit = state.days.n < o.youngDays ? o.unlikelyYoungZ : o.unlikelyZ
  if (warm && found.length === 0 && state.episode.severity === null && unlikely >= unlikelyLimit)
    found.push({
      rule: 'statistical',
      kind: 'drift',
      severity: ratioSeverity(unlikely / unlikelyLimit),
      value: x,
      expected_min: null,
      expected_max: null,
      message: `The last readings are further from what was expected than this sensor has been lately (${unlikely.toFixed(1)} standard deviations of its recent error).`,
      score: strength(unlikely / unlikelyLimit),
    })
  // A day unlike the last two weeks' days (days.ts): a hit of its own, at most once a day.
  const dayRatio = learnDays(state.days, t, x)
  const day: Hit | null =
    warm && dayRatio >= 1
      ? {
          rule: 'statistical',
          kind: 'drift',
          severity: ratioSeverity(dayRatio),
          value: x,
          expected_min: null,
          expected_max: null,
          message: dayMessage(state.days, round),
          score: strength(dayRatio),
        }
      : null
  // Its score grades hits only: without a finding it is not worked out (an exp and a logarithm).
  const lik = learnLikelihood(state.lik, err, found.length > 0)
  // Whether this step is a context the variable has been in (context.ts); pairs count once the detector
  // is warm: placed on the range of its first few readings they would mean nothing.
  const familiar = learnContext(state.ctx, x, warm)
  // A series moving unlike it did on the earlier days (days.ts: a restless day short of being a finding
  // itself, or restless hours): its hits grade higher.
  const unrest = found.length > 0 && restless(state.days)
  state.onsets = (state.onsets ?? 0) * (1 - RARE_ALPHA)
  state.peak = (state.peak ?? 0) * (1 - PEAK_ALPHA)
  if (found.length > 0) {
    let score = -Infinity
    for (const f of found) score = Math.max(score, f.score)
    const worst = { ...worstOf(found), score }
    // A kind the episode has not shown for two episode gaps is new again: a spike inside a long drift
    // (or a drift returning) is a fresh condition, not the episode's old one.
    const shown = (kind: Kind) => {
      const i = ep.kinds.indexOf(kind)
      return i >= 0 && state.n - ep.at![i]! <= 2 * o.episodeGap
    }
    const fresh = found.find((f) => !shown(f.kind))
    const onset = ep.severity === null
    // A spike onset at the time of day and size of spikes on the last days is the series' routine
    // (routine.ts): it grades at the floor.
    const spikeOnset = onset && worst.kind === 'spike'
    const usualSpike = spikeOnset && routine(state.spikes, t, x)
    if (spikeOnset) keepSpike(state.spikes, t, x)
    if (onset) {
      state.onsets += RARE_ALPHA
      ep.start = state.n
    }
    // A finding still coming two episode gaps after the onset is a lasting condition, not a burst's
    // tail: its hits grade as an onset does.
    const lasting = state.n - (ep.start ??= state.n) >= 2 * o.episodeGap
    const peak = state.peak
    // A kind coming back inside a lasting episode is graded without the likelihood: its long run has
    // learned the episode's own error by then, so it would call the new condition ordinary. What a hit
    // weighs against an onset (a spike that rose to it, an episode's climb): grade.ts `weightOf`.
    const graded = (h: Hit, back = false, again = false) => ({
      ...h,
      score: gradeScore(
        h.score,
        weightOf(
          onset || lasting,
          back,
          h.kind === 'spike' && rise,
          state.n - ep.start!,
          (usualSpike && h === worst) || again,
        ),
        state.onsets,
        peak,
        back ? 1 : lik,
        familiar,
        unrest,
      ),
    })
    state.peak = Math.max(peak, worst.score)
    if (ep.severity === null || SEVERITY_RANK[worst.severity] > SEVERITY_RANK[ep.severity]) {
      hits.push(graded(worst))
      ep.severity = higherSeverity(ep.severity ?? worst.severity, worst.severity)
    } else if (fresh) {
      // Spikes coming back again inside the episode are its pattern (returns.ts): at the floor.
      const back = ep.kinds.includes(fresh.kind)
      hits.push(graded(fresh, back, back && patternReturn(ep, fresh.kind)))
    }
    for (const f of found) {
      const i = ep.kinds.indexOf(f.kind)
      if (i < 0) ep.kinds.push(f.kind)
      ep.at![i < 0 ? ep.kinds.length - 1 : i] = state.n
    }
    ep.quiet = 0
    state.normal.statistical = 0
  } else {
    if (ep.severity !== null && ++ep.quiet >= o.episodeGap) {
      ep.severity = null
      ep.kinds = []
      ep.at = []
      delete ep.returns
    }
    // Normal readings count once the episode is over: the anomaly it opened stays open while it lasts.
    state.normal.statistical = ep.severity === null ? state.normal.statistical + 1 : 0
    if (ep.severity === null) {
      if (spikeZ >= 0 && state.k > 10) learnTail(state.spike, spikeZ, o.tailRate)
      // The chart moves slowly: its tail takes one value per chart time constant (near-independent
      // values) at a tenth of the rate, or a slow drift would teach it its own size before it is found.
      if (driftZ >= 0 && t - state.drift.sampled >= o.driftChartTau) {
        learnTail(state.drift.tail, driftZ, o.tailRate / 10)
        state.drift.sampled = t
      }
    }
  }
  // A day unlike the others is news inside an episode too, and outside the episodes (it opens none):
  // graded by its excess alone, as rare as it is (once a day at most) and a day's error, not the
  // likelihood's. It takes the place of a weaker statistical hit at the same reading.
  if (day) {
    const graded = { ...day, score: gradeScore(day.score, 1, 0, 0, 1) }
    const i = hits.findIndex((h) => h.rule === 'statistical')
    if (i < 0) hits.push(graded)
    else if (hits[i]!.score < graded.score) hits[i] = graded
    // Not a normal reading: the anomaly it opens resolves after the usual run of normal ones.
    state.normal.statistical = 0
  }
  state.n += 1
  state.last = t
  return hits
}
