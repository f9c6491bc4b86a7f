// Anomaly detection for one sensor variable, pure and synchronous: threshold rules, plus a statistical
// detector (robust z-score for spikes, flat-line runs for stuck values, an EWMA chart on the residual
// from a learned daily profile for slow drifts). All it knows lives in a plain JSON state object.

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
}

export interface DetectorOptions {
  /** Readings seen before the statistical detector may raise anything. */
  warmup: number
  /** Readings in the rolling window that gives the local level and slope. */
  window: number
  /** |z| at which a reading is a spike. */
  spikeZ: number
  /** Smoothing of the residual bias and scale (per reading). */
  scaleAlpha: number
  /** Floor for the noise scale: the sensor's resolution, so a quiet series is not all alarms. */
  minScale: number
  /** Shortest run of identical values that can be a stuck sensor. */
  stuckRun: number
  /** How unlikely (under the sensor's own rate of repeated values) a run must be to count. */
  stuckProbability: number
  /** Drift alarm when the smoothed profile residual is this many standard deviations off. */
  driftK: number
  /** Time constants (ms) of the drift chart, of the residual mean it is compared with, and of its variance. */
  driftChartTau: number
  driftMeanTau: number
  driftVarTau: number
  /** Bins of the daily profile, and how much one day moves a bin. */
  profileBins: number
  profileDayAlpha: number
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE
export const DAY = 24 * HOUR

/** Defaults tuned on the synthetic series of `bun run eval:intelligence`; minScale is per variable. */
export function detectorOptions(variable: string, warmup = 30): DetectorOptions {
  return {
    warmup,
    window: 15,
    spikeZ: 5,
    scaleAlpha: 0.02,
    minScale: variable === 'humedad' ? 0.2 : 0.05,
    stuckRun: 10,
    stuckProbability: 1e-6,
    driftK: 5,
    driftChartTau: 15 * MINUTE,
    driftMeanTau: 2 * HOUR,
    driftVarTau: 12 * HOUR,
    profileBins: 48,
    profileDayAlpha: 0.5,
  }
}

export interface VariableState {
  v: 2
  /** Readings checked so far. */
  n: number
  /** Timestamp (ms) of the last reading checked; older ones are stored but not checked. */
  last: number | null
  /** The rolling window: times and values (spikes enter clipped). */
  ts: number[]
  xs: number[]
  /** Residual bias and mean absolute deviation around it, and how many residuals fed them. */
  bias: number
  mad: number
  k: number
  stuck: { value: number | null; run: number; p0: number; k: number }
  /** Daily profile: per bin the learned mean (null until learned), and the bin being accumulated. */
  profile: { m: (number | null)[]; bin: number; day: number; sum: number; cnt: number }
  drift: { e: number; mean: number; mad: number; k: number }
  breach: { n: number; since: number | null }
  /** Consecutive readings with no hit, per rule (auto-resolve counts on these). */
  normal: Record<Rule, number>
}

export function newState(bins = 48): VariableState {
  return {
    v: 2,
    n: 0,
    last: null,
    ts: [],
    xs: [],
    bias: 0,
    mad: 0,
    k: 0,
    stuck: { value: null, run: 0, p0: 0, k: 0 },
    profile: { m: Array(bins).fill(null), bin: -1, day: -1, sum: 0, cnt: 0 },
    drift: { e: 0, mean: 0, mad: 0, k: 0 },
    breach: { n: 0, since: null },
    normal: { threshold: 0, statistical: 0 },
  }
}

/** A stored state, or a fresh one when it is missing or of another shape. */
export function reviveState(raw: unknown, bins = 48): VariableState {
  const state = raw as VariableState | null
  if (!state || state.v !== 2 || state.profile?.m?.length !== bins) return newState(bins)
  return state
}

let scratch = new Float64Array(64)

/** Median of xs[from..to) by insertion sort into a reused buffer (no allocation on the hot path). */
function medianOf(xs: readonly number[], from: number, to: number): number {
  const n = to - from
  if (scratch.length < n) scratch = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const v = xs[from + i]!
    let j = i - 1
    while (j >= 0 && scratch[j]! > v) {
      scratch[j + 1] = scratch[j]!
      j--
    }
    scratch[j + 1] = v
  }
  const mid = n >> 1
  return n % 2 ? scratch[mid]! : (scratch[mid - 1]! + scratch[mid]!) / 2
}

/** Median of an ascending range. */
const sortedMedian = (xs: readonly number[], from: number, to: number) => {
  const mid = (from + to - 1) / 2
  return (xs[Math.floor(mid)]! + xs[Math.ceil(mid)]!) / 2
}

const round = (x: number) => Math.round(x * 1000) / 1000
const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x))
const ewAlpha = (dt: number, tau: number) => 1 - Math.exp(-Math.min(dt, tau) / tau)

/** Level expected at `t` from the window: its median, moved along a robust slope (medians of thirds). */
function localLevel(ts: number[], xs: number[], t: number): number | null {
  const n = xs.length
  if (n < 5) return null
  const third = Math.max(2, Math.floor(n / 3))
  const dt = sortedMedian(ts, n - third, n) - sortedMedian(ts, 0, third)
  const slope = dt > 0 ? (medianOf(xs, n - third, n) - medianOf(xs, 0, third)) / dt : 0
  return medianOf(xs, 0, n) + slope * (t - sortedMedian(ts, 0, n))
}

function thresholdSeverity(excess: number, rule: ThresholdRule): Severity {
  const width =
    rule.min != null && rule.max != null
      ? rule.max - rule.min
      : Math.max(Math.abs((rule.max ?? rule.min)!), 1)
  const ratio = excess / width
  return ratio >= 0.5 ? 'critical' : ratio >= 0.1 ? 'major' : 'minor'
}

function checkThreshold(state: VariableState, t: number, x: number, rule: ThresholdRule | null) {
  const above = rule?.max != null && x > rule.max
  const below = rule?.min != null && x < rule.min
  if (!rule || (!above && !below)) {
    state.breach = { n: 0, since: null }
    state.normal.threshold += 1
    return undefined
  }
  state.normal.threshold = 0
  state.breach.n += 1
  state.breach.since ??= t
  const forReadings = rule.for_readings ?? 1
  const forMs = (rule.for_seconds ?? 0) * 1000
  if (state.breach.n < forReadings || t - state.breach.since < forMs) return undefined
  const bound = above ? rule.max! : rule.min!
  const lasting =
    forReadings > 1 || forMs > 0
      ? ` for ${state.breach.n} readings (${Math.round((t - state.breach.since) / 1000)} s)`
      : ''
  const hit: Hit = {
    rule: 'threshold',
    kind: above ? 'above_max' : 'below_min',
    severity: thresholdSeverity(Math.abs(x - bound), rule),
    value: x,
    expected_min: rule.min ?? null,
    expected_max: rule.max ?? null,
    message: `${x} is ${above ? 'above the maximum' : 'below the minimum'} ${bound}${lasting}.`,
  }
  return hit
}

function spikeSeverity(z: number): Severity {
  const a = Math.abs(z)
  return a >= 24 ? 'critical' : a >= 12 ? 'major' : 'minor'
}

/**
 * Checks one reading of one variable and learns from it. Mutates `state`; returns the hits (at most
 * one per rule). Readings must come in time order: an older one is neither checked nor learned.
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
  const stat: Hit[] = []

  // A long silence breaks the local context: start the window again, keep the learned scale.
  if (state.ts.length >= 2 && state.last !== null) {
    const spacing = (state.last - state.ts[0]!) / (state.ts.length - 1)
    if (t - state.last > Math.max(6 * spacing, 10 * MINUTE)) {
      state.ts = []
      state.xs = []
    }
  }

  // Stuck: a run of identical values that the sensor's own rate of repeats makes improbable.
  const same = state.stuck.value !== null && Math.abs(x - state.stuck.value) <= 1e-9
  state.stuck.run = same ? state.stuck.run + 1 : 1
  state.stuck.value = x
  const p0 = state.stuck.p0
  const needed =
    p0 <= 0
      ? o.stuckRun
      : p0 >= 0.999
        ? Infinity
        : Math.max(o.stuckRun, Math.ceil(Math.log(o.stuckProbability) / Math.log(p0)))
  const stuck = warm && state.stuck.run >= needed
  if (stuck)
    stat.push({
      rule: 'statistical',
      kind: 'stuck',
      severity:
        state.stuck.run >= 10 * needed
          ? 'major'
          : state.stuck.run >= 3 * needed
            ? 'minor'
            : 'warning',
      value: x,
      expected_min: null,
      expected_max: null,
      message: `The value has not changed for ${state.stuck.run} readings; this sensor repeats a value ${Math.round(p0 * 100)}% of the time.`,
    })

  // Spike: robust z-score of the residual from the window's level and slope.
  const level = localLevel(state.ts, state.xs, t)
  const sigma = Math.max(state.mad * 1.2533, o.minScale)
  let spike = false
  let clipped = x
  if (level !== null) {
    const center = level + state.bias
    const z = (x - center) / sigma
    spike = warm && state.k >= 10 && Math.abs(z) >= o.spikeZ
    if (spike) {
      clipped = center + Math.sign(z) * o.spikeZ * sigma
      stat.push({
        rule: 'statistical',
        kind: 'spike',
        severity: spikeSeverity(z),
        value: x,
        expected_min: round(center - o.spikeZ * sigma),
        expected_max: round(center + o.spikeZ * sigma),
        message: `${x} is ${Math.abs(z).toFixed(1)} robust standard deviations ${z > 0 ? 'above' : 'below'} the expected ${round(center)}.`,
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
  if (!stuck) {
    state.ts.push(t)
    state.xs.push(clipped)
    if (state.xs.length > o.window) {
      state.ts.shift()
      state.xs.shift()
    }
  }
  if (!stuck && !spike) {
    state.stuck.k += 1
    const a = Math.max(0.005, 1 / state.stuck.k)
    state.stuck.p0 += a * ((same ? 1 : 0) - state.stuck.p0)
  }

  // Drift: EWMA chart of the residual from the daily profile, against its own slow mean and spread.
  const dt = state.last === null ? 0 : t - state.last
  const base = profileAt(state, t, o)
  let drifting = false
  let usual = !stuck && !spike
  if (base !== null && usual) {
    const d = x - base
    const dr = state.drift
    const sd = Math.max(dr.mad * 1.2533, o.minScale)
    const dev = d - dr.mean
    dr.e += ewAlpha(dt, o.driftChartTau) * (dev - dr.e)
    drifting = warm && dr.k >= o.warmup && Math.abs(dr.e) > o.driftK * sd
    if (drifting) {
      const ratio = Math.abs(dr.e) / (o.driftK * sd)
      stat.push({
        rule: 'statistical',
        kind: 'drift',
        severity: ratio >= 2.5 ? 'major' : ratio >= 1.5 ? 'minor' : 'warning',
        value: x,
        expected_min: round(base + dr.mean - o.driftK * sd),
        expected_max: round(base + dr.mean + o.driftK * sd),
        message: `Readings have drifted ${dr.e > 0 ? 'up' : 'down'} by ${Math.abs(dr.e).toFixed(2)} from this time of day's usual ${round(base + dr.mean)}.`,
      })
    }
    // Unusual residuals teach neither the spread nor the profile, and the mean only slowly (very
    // slowly during an alarm): a drift in progress must not become the new normal, a lasting shift does.
    usual = dr.k < o.warmup || (!drifting && Math.abs(dev) <= 3 * sd)
    dr.k += 1
    const warming = dr.k <= o.warmup
    const tau = usual ? o.driftMeanTau : drifting ? 12 * o.driftMeanTau : 4 * o.driftMeanTau
    dr.mean += (warming ? 1 / dr.k : ewAlpha(dt, tau)) * (d - dr.mean)
    if (usual)
      dr.mad += (warming ? 1 / dr.k : ewAlpha(dt, o.driftVarTau)) * (Math.abs(dev) - dr.mad)
  }
  if (usual) learnProfile(state, t, x, o)

  if (stat.length > 0) {
    state.normal.statistical = 0
    hits.push(
      stat.reduce((a, b) => (SEVERITY_RANK[b.severity] > SEVERITY_RANK[a.severity] ? b : a)),
    )
  } else state.normal.statistical += 1
  state.n += 1
  state.last = t
  return hits
}

function binOf(t: number, o: DetectorOptions) {
  const inDay = ((t % DAY) + DAY) % DAY
  return { pos: (inDay / DAY) * o.profileBins, day: Math.floor(t / DAY) }
}

/** The profile's value at t, interpolated between bin centres; null until both bins have a day. */
function profileAt(state: VariableState, t: number, o: DetectorOptions): number | null {
  const { pos } = binOf(t, o)
  const shifted = pos - 0.5
  const i0 = (Math.floor(shifted) + o.profileBins) % o.profileBins
  const i1 = (i0 + 1) % o.profileBins
  const a = state.profile.m[i0]
  const b = state.profile.m[i1]
  if (a == null || b == null) return null
  const w = shifted - Math.floor(shifted)
  return a * (1 - w) + b * w
}

/** Adds x to the bin being accumulated; leaving it (readings come in time order) folds it into its mean. */
function learnProfile(state: VariableState, t: number, x: number, o: DetectorOptions) {
  const { pos, day } = binOf(t, o)
  const bin = Math.floor(pos)
  const p = state.profile
  if (p.bin !== bin || p.day !== day) {
    if (p.cnt > 0) {
      const mean = p.sum / p.cnt
      const old = p.m[p.bin]
      p.m[p.bin] = round4(old == null ? mean : old + o.profileDayAlpha * (mean - old))
    }
    p.bin = bin
    p.day = day
    p.sum = 0
    p.cnt = 0
  }
  p.sum += x
  p.cnt += 1
}

const round4 = (x: number) => Math.round(x * 10_000) / 10_000
