// Forecasting, pure: resampling to a regular grid, naive last value, Holt's damped trend and additive
// damped Holt-Winters with a daily or weekly season (equations and interval variances from Hyndman &
// Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed., §8.2, §8.3 and Table 8.8), smoothing
// parameters fitted on one-step and h-step errors, the model chosen by rolling-origin holdout error
// against the sensor's own history.

export type ModelName = 'naive' | 'holt' | 'holt_winters'
export const MODELS: readonly ModelName[] = ['naive', 'holt', 'holt_winters']

export interface Point {
  t: number
  x: number
}

export interface Fit {
  model: ModelName
  params: Record<string, number>
  /** Standard deviation of the one-step in-sample errors. */
  sigma: number
  /** Point forecasts for 1..H steps after the last value. */
  forecast: number[]
  /** Standard deviation of the h-step error, h = 1..H. */
  spread: number[]
}

const MINUTE = 60_000
const DAY_MS = 86_400_000

/**
 * History a forecast reads: 24 days (two full weeks before a holdout of up to a week of origins, for
 * a weekly season), or three horizons when that is longer, at most 60 days.
 */
export const historyMs = (horizonMinutes: number) =>
  Math.min(Math.max(24 * DAY_MS, 3 * horizonMinutes * MINUTE), 60 * DAY_MS)
const DAY_MINUTES = 1440
const WEEK_DAYS = 7
const STEPS = [1, 5, 10, 15, 30, 60, 120, 180, 360]
/** At most this many forecast points; longer horizons get a coarser step. */
export const MAX_POINTS = 288
/** Spare training points every model needs before its first holdout origin. */
const MIN_TRAIN = 20
const Z95 = 1.96

/** The grid step (minutes): no finer than the data, coarse enough to keep the forecast short. */
export function chooseStep(spacingMs: number, horizonMinutes: number): number {
  for (const step of STEPS)
    if (step * MINUTE >= 0.9 * spacingMs && horizonMinutes / step <= MAX_POINTS) return step
  return STEPS[STEPS.length - 1]!
}

export function medianSpacing(points: readonly Point[]): number {
  if (points.length < 2) return MINUTE
  const gaps = []
  for (let i = 1; i < points.length; i++) gaps.push(points[i]!.t - points[i - 1]!.t)
  gaps.sort((a, b) => a - b)
  return Math.max(gaps[gaps.length >> 1]!, 1)
}

/**
 * Means per bin of `stepMs`, bins ending at the last point (so with one reading per step each bin is
 * one reading); empty bins are filled by linear interpolation. Points must be sorted by time.
 */
export function resample(
  points: readonly Point[],
  stepMs: number,
): { end: number; values: number[] } {
  const end = points[points.length - 1]!.t
  const count = Math.floor((end - points[0]!.t) / stepMs) + 1
  const sum = new Float64Array(count)
  const cnt = new Uint32Array(count)
  for (const p of points) {
    const k = count - 1 - Math.floor((end - p.t) / stepMs)
    sum[k]! += p.x
    cnt[k]! += 1
  }
  const values: number[] = Array(count)
  let prev = -1
  for (let i = 0; i < count; i++) {
    if (cnt[i] === 0) continue
    values[i] = sum[i]! / cnt[i]!
    for (let j = prev + 1; j < i; j++)
      values[j] = values[prev]! + ((values[i]! - values[prev]!) * (j - prev)) / (i - prev)
    prev = i
  }
  return { end, values }
}

interface Filtered {
  sse: number
  count: number
  /** Forecasts made at each requested origin t from y[0..t) only. */
  atOrigins: Map<number, number[]>
  forecast: number[]
}

function naiveFilter(y: number[], origins: readonly number[], h: number): Filtered {
  let sse = 0
  for (let t = 1; t < y.length; t++) sse += (y[t]! - y[t - 1]!) ** 2
  const atOrigins = new Map(origins.map((o) => [o, Array<number>(h).fill(y[o - 1]!)]))
  return { sse, count: y.length - 1, atOrigins, forecast: Array(h).fill(y[y.length - 1]!) }
}

/**
 * Holt's damped trend (FPP3 §8.2): ℓt = αyt + (1−α)(ℓt−1 + φbt−1), bt = β(ℓt − ℓt−1) + (1−β)φbt−1,
 * forecasting ℓ + (φ + … + φ^h)b; φ = 1 is the plain linear trend.
 */
function holtFilter(
  y: number[],
  alpha: number,
  beta: number,
  phi: number,
  origins: readonly number[],
  h: number,
  fitH = 1,
) {
  const k = Math.min(5, Math.floor(y.length / 2))
  let level = y[0]!
  let trend = k > 0 ? (mean(y, k, 2 * k) - mean(y, 0, k)) / k : 0
  let sse = 0
  const atOrigins = new Map<number, number[]>()
  const wanted = new Set(origins)
  const ahead = () => dampedPath(h, phi).map((d) => level + d * trend)
  const far = farStep(y.length, fitH, phi)
  for (let t = 1; t < y.length; t++) {
    if (wanted.has(t)) atOrigins.set(t, ahead())
    if (far.at(t)) far.add(y[t + fitH - 1]! - (level + far.carried * trend))
    const error = y[t]! - (level + phi * trend)
    sse += error * error
    const previous = level
    level = alpha * y[t]! + (1 - alpha) * (level + phi * trend)
    trend = beta * (level - previous) + (1 - beta) * phi * trend
  }
  return { sse, count: y.length - 1, atOrigins, forecast: ahead(), far: far.mse() }
}

/**
 * The fitHth-step-ahead error, sampled every few steps: parameters chosen on it as well as on the
 * one-step error do not chase the last reading when the forecast looks far ahead.
 */
function farStep(n: number, fitH: number, phi: number) {
  const stride = Math.max(1, Math.floor(fitH / 4))
  let sse = 0
  let count = 0
  return {
    carried: fitH > 1 ? dampedPath(fitH, phi)[fitH - 1]! : 0,
    at: (t: number) => fitH > 1 && t % stride === 0 && t + fitH - 1 < n,
    add(error: number) {
      sse += error * error
      count += 1
    },
    mse: () => (count > 0 ? sse / count : 0),
  }
}

/** φ + φ² + … + φ^i for i = 1..h: how far a damped trend carries at each step. */
function dampedPath(h: number, phi: number) {
  const out: number[] = Array(h)
  let sum = 0
  let power = 1
  for (let i = 0; i < h; i++) {
    power *= phi
    sum += power
    out[i] = sum
  }
  return out
}

/**
 * Additive damped Holt-Winters with period m: ℓt = α(yt − st−m) + (1−α)(ℓt−1 + φbt−1),
 * bt = β(ℓt − ℓt−1) + (1−β)φbt−1, st = γ(yt − ℓt−1 − φbt−1) + (1−γ)st−m. Needs two full seasons.
 * The start comes from every full season before `initEnd` (classical decomposition: a line through
 * the seasons' means, the season as the average deviation from it), so a small γ has a season to keep.
 */
function hwFilter(
  y: number[],
  m: number,
  alpha: number,
  beta: number,
  gamma: number,
  phi: number,
  origins: readonly number[],
  h: number,
  initEnd = y.length,
  fitH = 1,
) {
  const seasons = Math.max(2, Math.floor(initEnd / m))
  const centre = (k: number) => k * m + (m - 1) / 2
  const means = Array.from({ length: seasons }, (_, k) => mean(y, k * m, (k + 1) * m))
  const meanOfMeans = mean(means, 0, seasons)
  const meanCentre = centre((seasons - 1) / 2)
  let num = 0
  let den = 0
  for (let k = 0; k < seasons; k++) {
    num += (centre(k) - meanCentre) * (means[k]! - meanOfMeans)
    den += (centre(k) - meanCentre) ** 2
  }
  let trend = den > 0 ? num / den : 0
  const line = (t: number) => meanOfMeans + trend * (t - meanCentre)
  const season: number[] = Array(m).fill(0)
  for (let k = 0; k < seasons; k++)
    for (let i = 0; i < m; i++) season[i]! += (y[k * m + i]! - line(k * m + i)) / seasons
  const offset = mean(season, 0, m)
  for (let i = 0; i < m; i++) season[i]! -= offset
  let level = line(2 * m - 1)
  let sse = 0
  const atOrigins = new Map<number, number[]>()
  const wanted = new Set(origins)
  // After consuming y[t-1]: the forecast of y[t-1+j] uses the season slot (t-1+j) mod m.
  const ahead = (t: number) => {
    const path = dampedPath(h, phi)
    return path.map((d, i) => level + d * trend + season[(t + i) % m]!)
  }
  const far = farStep(y.length, fitH, phi)
  // Season slots line up with y's indices from 0: the filter starts at 2m.
  for (let t = 2 * m; t < y.length; t++) {
    if (wanted.has(t)) atOrigins.set(t, ahead(t))
    if (far.at(t))
      far.add(y[t + fitH - 1]! - (level + far.carried * trend + season[(t + fitH - 1) % m]!))
    const slot = t % m
    const error = y[t]! - (level + phi * trend + season[slot]!)
    sse += error * error
    const previous = level
    const damped = phi * trend
    level = alpha * (y[t]! - season[slot]!) + (1 - alpha) * (previous + damped)
    trend = beta * (level - previous) + (1 - beta) * damped
    season[slot] = gamma * (y[t]! - previous - damped) + (1 - gamma) * season[slot]!
  }
  return {
    sse,
    count: Math.max(y.length - 2 * m, 1),
    atOrigins,
    forecast: ahead(y.length),
    far: far.mse(),
  }
}

function mean(y: readonly number[], from: number, to: number) {
  let sum = 0
  for (let i = from; i < to; i++) sum += y[i]!
  return sum / Math.max(to - from, 1)
}

const ALPHAS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
const BETAS = [0.001, 0.01, 0.05, 0.1, 0.2]
const HW_ALPHAS = [0.02, 0.05, 0.1, 0.2, 0.4, 0.7]
const HW_BETAS = [0.001, 0.01, 0.05]
const GAMMAS = [0.05, 0.1, 0.2, 0.4, 0.7]
/** Trend damping: 0.8 flattens within a few steps, 1 keeps the straight line. */
const PHIS = [0.8, 0.9, 0.98, 1]

/** Smoothing parameters by least one-step squared error on y (a grid: robust and deterministic). */
/**
 * Smoothing parameters on a grid (robust and deterministic), by the mean of the one-step and the
 * h-step squared errors on y: a long horizon does not get a model that only chases the last reading.
 */
function fitParams(model: ModelName, y: number[], m: number, h = 1): Record<string, number> {
  let best = { loss: Infinity, params: {} as Record<string, number> }
  const consider = (
    f: { sse: number; count: number; far: number },
    params: Record<string, number>,
  ) => {
    const loss = f.sse / Math.max(f.count, 1) + (h > 1 ? f.far : 0)
    if (loss < best.loss) best = { loss, params }
  }
  if (model === 'holt')
    for (const alpha of ALPHAS)
      for (const beta of BETAS)
        for (const phi of PHIS)
          consider(holtFilter(y, alpha, beta, phi, [], 0, h), { alpha, beta, phi })
  if (model === 'holt_winters')
    for (const alpha of HW_ALPHAS)
      for (const beta of HW_BETAS)
        for (const gamma of GAMMAS)
          for (const phi of PHIS) {
            if (gamma > 1 - alpha) continue
            consider(hwFilter(y, m, alpha, beta, gamma, phi, [], 0, y.length, h), {
              alpha,
              beta,
              gamma,
              phi,
            })
          }
  return best.params
}

function run(
  model: ModelName,
  y: number[],
  m: number,
  params: Record<string, number>,
  origins: readonly number[],
  h: number,
): Filtered {
  if (model === 'naive') return naiveFilter(y, origins, h)
  if (model === 'holt') return holtFilter(y, params.alpha!, params.beta!, params.phi!, origins, h)
  // Holdout forecasts start from what was known before the first origin.
  const initEnd = origins.length > 0 ? Math.min(...origins) : y.length
  return hwFilter(
    y,
    m,
    params.alpha!,
    params.beta!,
    params.gamma!,
    params.phi!,
    origins,
    h,
    initEnd,
  )
}

/** Standard deviation of the h-step errors from the models' innovation forms (FPP3 Table 8.8). */
function spreads(
  model: ModelName,
  params: Record<string, number>,
  sigma: number,
  h: number,
  m: number,
) {
  const out: number[] = []
  const carried = model === 'naive' ? [] : dampedPath(h, params.phi ?? 1)
  let sum = 0
  for (let step = 1; step <= h; step++) {
    if (model === 'naive') out.push(sigma * Math.sqrt(step))
    else {
      out.push(sigma * Math.sqrt(1 + sum))
      const j = step
      // Damped trend: cj = α(1 + β(φ + … + φ^j)) + γ when j is a whole number of seasons.
      const c =
        params.alpha! * (1 + carried[j - 1]! * params.beta!) +
        (model === 'holt_winters' && j % m === 0 ? params.gamma! : 0)
      sum += c * c
    }
  }
  return out
}

/** Fits one model on all of y and forecasts h steps. */
export function fitModel(model: ModelName, y: number[], h: number, m: number): Fit {
  const params = fitParams(model, y, m, h)
  if (model === 'holt_winters') params.period = m
  const filtered = run(model, y, m, params, [], h)
  const sigma = Math.sqrt(filtered.sse / Math.max(filtered.count, 1))
  return {
    model,
    params,
    sigma,
    forecast: filtered.forecast,
    spread: spreads(model, params, sigma, h, m),
  }
}

export interface Evaluation {
  mae?: number
  rmse?: number
  params?: Record<string, number>
  skipped?: string
}

export interface Selection {
  chosen: ModelName
  fit: Fit
  evaluations: Record<ModelName, Evaluation>
  origins: number
}

/** Minimum points for an h-step forecast: training plus one holdout of h. */
export const minPoints = (h: number) => 2 * h + MIN_TRAIN

/**
 * Rolling-origin holdout: parameters fitted on the history before the first origin, then each model
 * forecasts h steps from up to 8 origins spread over the last day (or the last 8h steps); the lowest
 * mean absolute error wins and is refitted on everything.
 */
export function selectModel(y: number[], h: number, m: number): Selection {
  const n = y.length
  const spacing = Math.max(h, Math.ceil(m / 8))
  const origins: number[] = []
  for (let i = 0; i < 8; i++) {
    const origin = n - h - i * spacing
    if (origin < h + MIN_TRAIN) break
    origins.unshift(origin)
  }
  if (origins.length === 0) throw new Error(`selectModel needs at least ${minPoints(h)} points`)
  const train = y.slice(0, origins[0])
  const evaluations = {} as Record<ModelName, Evaluation>
  // Holt-Winters tries a daily season and, with two weeks before the holdout, a weekly one too.
  const periods = [m, WEEK_DAYS * m].filter((p) => train.length >= 2 * p + 1)
  for (const model of MODELS) {
    if (model === 'holt_winters' && periods.length === 0) {
      evaluations[model] = {
        skipped: `needs two full days of history before the holdout (${2 * m + 1} points), had ${train.length}`,
      }
      continue
    }
    for (const period of model === 'holt_winters' ? periods : [m]) {
      const params = fitParams(model, train, period, h)
      if (model === 'holt_winters') params.period = period
      const { atOrigins } = run(model, y, period, params, origins, h)
      let abs = 0
      let sq = 0
      let count = 0
      for (const origin of origins) {
        const forecast = atOrigins.get(origin)!
        for (let i = 0; i < h; i++) {
          const error = y[origin + i]! - forecast[i]!
          abs += Math.abs(error)
          sq += error * error
          count += 1
        }
      }
      const mae = abs / count
      if (evaluations[model]?.mae === undefined || mae < evaluations[model].mae!)
        evaluations[model] = { mae, rmse: Math.sqrt(sq / count), params }
    }
  }
  let chosen: ModelName = 'naive'
  for (const model of MODELS) {
    const mae = evaluations[model].mae
    if (mae !== undefined && mae < evaluations[chosen].mae!) chosen = model
  }
  const period = evaluations[chosen].params?.period ?? m
  return { chosen, fit: fitModel(chosen, y, h, period), evaluations, origins: origins.length }
}

export interface ForecastPointOut {
  t: number
  value: number
  lower: number
  upper: number
}

export type ForecastOutcome =
  | {
      ok: true
      stepMinutes: number
      season: number
      points: ForecastPointOut[]
      selection: Selection
      used: number
    }
  | { ok: false; reason: string }

/** From raw readings (sorted by time) to a forecast of `horizonMinutes`, or the reason it cannot be made. */
export function forecastReadings(
  points: readonly Point[],
  horizonMinutes: number,
  bounds: { min: number; max: number },
): ForecastOutcome {
  if (points.length < 2)
    return {
      ok: false,
      reason: `Only ${points.length} reading(s) in the history; a forecast needs a history to learn from.`,
    }
  const stepMinutes = chooseStep(medianSpacing(points), horizonMinutes)
  const stepMs = stepMinutes * MINUTE
  const { end, values } = resample(points, stepMs)
  const h = Math.max(1, Math.ceil(horizonMinutes / stepMinutes))
  const need = minPoints(h)
  if (values.length < need) {
    const minutes = (need - 1) * stepMinutes
    return {
      ok: false,
      reason: `Not enough history: a ${horizonMinutes}-minute forecast at ${stepMinutes}-minute steps needs ${need} points (${formatSpan(minutes)} of readings), but the history spans ${values.length} point(s) (${formatSpan((values.length - 1) * stepMinutes)}).`,
    }
  }
  const season = DAY_MINUTES / stepMinutes
  const selection = selectModel(values, h, season)
  const { forecast, spread } = selection.fit
  const clip = (v: number) => Math.min(bounds.max, Math.max(bounds.min, v))
  const out = forecast.map((value, i) => ({
    t: end + (i + 1) * stepMs,
    value: clip(value),
    lower: clip(value - Z95 * spread[i]!),
    upper: clip(value + Z95 * spread[i]!),
  }))
  const period = selection.fit.params.period ?? season
  return { ok: true, stepMinutes, season: period, points: out, selection, used: values.length }
}

function formatSpan(minutes: number) {
  if (minutes < 120) return `${minutes} min`
  if (minutes < 2 * DAY_MINUTES) return `${Math.round((minutes / 60) * 10) / 10} h`
  return `${Math.round((minutes / DAY_MINUTES) * 10) / 10} days`
}
