// Forecasting, pure: resampling to a regular grid, naive last value, Holt's linear trend and additive
// Holt-Winters with a daily season (equations and interval variances from Hyndman & Athanasopoulos,
// "Forecasting: Principles and Practice", 3rd ed., §8.2, §8.3 and Table 8.8), chosen by rolling-origin
// holdout error against the sensor's own history.

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
const DAY_MINUTES = 1440
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

/** Holt's linear trend: ℓt = αyt + (1−α)(ℓt−1 + bt−1), bt = β(ℓt − ℓt−1) + (1−β)bt−1. */
function holtFilter(
  y: number[],
  alpha: number,
  beta: number,
  origins: readonly number[],
  h: number,
) {
  const k = Math.min(5, Math.floor(y.length / 2))
  let level = y[0]!
  let trend = k > 0 ? (mean(y, k, 2 * k) - mean(y, 0, k)) / k : 0
  let sse = 0
  const atOrigins = new Map<number, number[]>()
  const wanted = new Set(origins)
  const ahead = () => Array.from({ length: h }, (_, i) => level + (i + 1) * trend)
  for (let t = 1; t < y.length; t++) {
    if (wanted.has(t)) atOrigins.set(t, ahead())
    const error = y[t]! - (level + trend)
    sse += error * error
    const previous = level
    level = alpha * y[t]! + (1 - alpha) * (level + trend)
    trend = beta * (level - previous) + (1 - beta) * trend
  }
  return { sse, count: y.length - 1, atOrigins, forecast: ahead() }
}

/**
 * Additive Holt-Winters with period m: ℓt = α(yt − st−m) + (1−α)(ℓt−1 + bt−1),
 * bt = β(ℓt − ℓt−1) + (1−β)bt−1, st = γ(yt − ℓt−1 − bt−1) + (1−γ)st−m. Needs two full seasons.
 */
function hwFilter(
  y: number[],
  m: number,
  alpha: number,
  beta: number,
  gamma: number,
  origins: readonly number[],
  h: number,
) {
  const first = mean(y, 0, m)
  const second = mean(y, m, 2 * m)
  let trend = (second - first) / m
  const season = Array.from(
    { length: m },
    (_, i) =>
      (y[i]! -
        first -
        (i - (m - 1) / 2) * trend +
        (y[i + m]! - second - (i - (m - 1) / 2) * trend)) /
      2,
  )
  const offset = mean(season, 0, m)
  for (let i = 0; i < m; i++) season[i]! -= offset
  let level = second + ((m - 1) / 2) * trend
  let sse = 0
  const atOrigins = new Map<number, number[]>()
  const wanted = new Set(origins)
  // After consuming y[t-1]: the forecast of y[t-1+j] uses the season slot (t-1+j) mod m.
  const ahead = (t: number) =>
    Array.from({ length: h }, (_, i) => level + (i + 1) * trend + season[(t + i) % m]!)
  for (let t = 2 * m; t < y.length; t++) {
    if (wanted.has(t)) atOrigins.set(t, ahead(t))
    const slot = t % m
    const error = y[t]! - (level + trend + season[slot]!)
    sse += error * error
    const previous = level
    level = alpha * (y[t]! - season[slot]!) + (1 - alpha) * (level + trend)
    trend = beta * (level - previous) + (1 - beta) * trend
    season[slot] = gamma * (y[t]! - previous - trend) + (1 - gamma) * season[slot]!
  }
  // Season slots must line up with y's indices from 0, hence the 2m-aligned start above.
  return { sse, count: Math.max(y.length - 2 * m, 1), atOrigins, forecast: ahead(y.length) }
}

function mean(y: readonly number[], from: number, to: number) {
  let sum = 0
  for (let i = from; i < to; i++) sum += y[i]!
  return sum / Math.max(to - from, 1)
}

const ALPHAS = [0.02, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9]
const BETAS = [0.001, 0.01, 0.05, 0.1, 0.2]
const HW_ALPHAS = [0.05, 0.1, 0.2, 0.4, 0.7]
const HW_BETAS = [0.001, 0.01, 0.05]
const GAMMAS = [0.05, 0.1, 0.2, 0.4]

/** Smoothing parameters by least one-step squared error on y (a grid: robust and deterministic). */
function fitParams(model: ModelName, y: number[], m: number): Record<string, number> {
  let best = { sse: Infinity, params: {} as Record<string, number> }
  if (model === 'holt')
    for (const alpha of ALPHAS)
      for (const beta of BETAS) {
        const { sse } = holtFilter(y, alpha, beta, [], 0)
        if (sse < best.sse) best = { sse, params: { alpha, beta } }
      }
  if (model === 'holt_winters')
    for (const alpha of HW_ALPHAS)
      for (const beta of HW_BETAS)
        for (const gamma of GAMMAS) {
          if (gamma > 1 - alpha) continue
          const { sse } = hwFilter(y, m, alpha, beta, gamma, [], 0)
          if (sse < best.sse) best = { sse, params: { alpha, beta, gamma } }
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
  if (model === 'holt') return holtFilter(y, params.alpha!, params.beta!, origins, h)
  return hwFilter(y, m, params.alpha!, params.beta!, params.gamma!, origins, h)
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
  let sum = 0
  for (let step = 1; step <= h; step++) {
    if (model === 'naive') out.push(sigma * Math.sqrt(step))
    else {
      out.push(sigma * Math.sqrt(1 + sum))
      const j = step
      const c =
        params.alpha! * (1 + j * params.beta!) +
        (model === 'holt_winters' && j % m === 0 ? params.gamma! : 0)
      sum += c * c
    }
  }
  return out
}

/** Fits one model on all of y and forecasts h steps. */
export function fitModel(model: ModelName, y: number[], h: number, m: number): Fit {
  const params = fitParams(model, y, m)
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
  for (const model of MODELS) {
    if (model === 'holt_winters' && train.length < 2 * m + 1) {
      evaluations[model] = {
        skipped: `needs two full days of history before the holdout (${2 * m + 1} points), had ${train.length}`,
      }
      continue
    }
    const params = fitParams(model, train, m)
    const { atOrigins } = run(model, y, m, params, origins, h)
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
    evaluations[model] = { mae: abs / count, rmse: Math.sqrt(sq / count), params }
  }
  let chosen: ModelName = 'naive'
  for (const model of MODELS) {
    const mae = evaluations[model].mae
    if (mae !== undefined && mae < evaluations[chosen].mae!) chosen = model
  }
  return { chosen, fit: fitModel(chosen, y, h, m), evaluations, origins: origins.length }
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
  return { ok: true, stepMinutes, season, points: out, selection, used: values.length }
}

function formatSpan(minutes: number) {
  if (minutes < 120) return `${minutes} min`
  if (minutes < 2 * DAY_MINUTES) return `${Math.round((minutes / 60) * 10) / 10} h`
  return `${Math.round((minutes / DAY_MINUTES) * 10) / 10} days`
}
