// Forecasts on NAB's seasonal series, the way POST /api/v1/predictions makes them (forecastReadings
// on the history the service reads), against the seasonal naive forecast (the value one day before
// the target) at three horizons: MASE = mean |error| of the forecast / mean |error| of seasonal naive
// over the same origins, so below 1 beats seasonal naive. Weekly naive (a week before) is shown too.
import {
  fitModel,
  forecastReadings,
  historyMs,
  MODELS,
  resample,
  type ModelName,
} from '../../src/intelligence/forecast'
import type { NabFile } from './corpus'

const DAY = 86_400_000
const WEEK = 7 * DAY
/** The series and horizons (minutes) reported. */
export const SEASONAL = [
  'realKnownCause/nyc_taxi.csv',
  'artificialNoAnomaly/art_daily_small_noise.csv',
]
export const HORIZONS = [60, 360, 1440]
const ORIGINS = 40
const UNBOUNDED = { min: -Infinity, max: Infinity }

export interface MaseRow {
  path: string
  horizon: number
  origins: number
  served: number
  /** The served forecast's error over weekly naive's (the value a week before the target). */
  weekly: number
  byModel: Partial<Record<ModelName, number>>
  chosen: Partial<Record<ModelName, number>>
}

/** MASE of what the service serves and of each model fitted alone, over evenly spaced origins. */
export function mase(file: NabFile, horizon: number): MaseRow {
  const { timestamps: ts, values: xs } = file
  const at = (t: number) => {
    const i = ts.indexOf(t)
    return i < 0 ? null : xs[i]!
  }
  const history = historyMs(horizon)
  // Origins from the day a week of history and a week-old value exist; history as much as there is.
  const first = ts.findIndex((t) => t >= ts[0]! + WEEK + DAY)
  const last = ts.findIndex((t) => t > ts[ts.length - 1]! - horizon * 60_000) - 1
  const errors = { served: 0, naive: 0, weekly: 0 }
  const byModel: Partial<Record<ModelName, number>> = {}
  const chosen: Partial<Record<ModelName, number>> = {}
  let origins = 0
  for (let k = 0; k < ORIGINS; k++) {
    const end = first + Math.floor(((last - first) * k) / (ORIGINS - 1))
    const target = ts[end]! + horizon * 60_000
    const actual = at(target)
    const seasonal = at(target - DAY)
    const weekly = at(target - WEEK)
    if (actual === null || seasonal === null || weekly === null) continue
    let start = end
    while (start > 0 && ts[start - 1]! > ts[end]! - history) start--
    const points = ts.slice(start, end + 1).map((t, i) => ({ t, x: xs[start + i]! }))
    const out = forecastReadings(points, horizon, UNBOUNDED)
    if (!out.ok)
      throw new Error(`${file.path} at ${new Date(ts[end]!).toISOString()}: ${out.reason}`)
    const h = out.points.length
    errors.served += Math.abs(out.points[h - 1]!.value - actual)
    errors.naive += Math.abs(seasonal - actual)
    errors.weekly += Math.abs(weekly - actual)
    chosen[out.selection.chosen] = (chosen[out.selection.chosen] ?? 0) + 1
    const { values } = resample(points, out.stepMinutes * 60_000)
    for (const model of MODELS) {
      if (model === 'holt_winters' && values.length < 2 * out.season + 1) continue
      const f = fitModel(model, values, h, out.season).forecast[h - 1]!
      byModel[model] = (byModel[model] ?? 0) + Math.abs(f - actual)
    }
    origins += 1
  }
  for (const m of Object.keys(byModel) as ModelName[]) byModel[m]! /= errors.naive
  return {
    path: file.path,
    horizon,
    origins,
    served: errors.served / errors.naive,
    weekly: errors.served / errors.weekly,
    byModel,
    chosen,
  }
}

export async function forecastReport(files: NabFile[]) {
  const rows: string[] = [
    `Forecasts on NAB's seasonal series: MASE against seasonal naive (the value a day before), ${ORIGINS} origins ` +
      'spread over each series after its first 8 days, each forecast from up to 24 days before it as POST /api/v1/predictions ' +
      'makes it ("served": the model chosen by holdout; the others fitted alone, on the same scale). Below 1 beats seasonal ' +
      'naive; the last column scales the served error by weekly naive (the value a week before) instead.',
    '',
    '| series | horizon | origins | served MASE | naive | Holt | Holt-Winters | models chosen | served / weekly naive |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
  ]
  for (const path of SEASONAL) {
    const file = files.find((f) => f.path === path)
    if (!file) throw new Error(`${path} is not in the corpus`)
    for (const horizon of HORIZONS) {
      const r = mase(file, horizon)
      const m = (x: number | undefined) => (x === undefined ? 'n/a' : x.toFixed(3))
      rows.push(
        `| ${path} | ${horizon} min | ${r.origins} | **${m(r.served)}** | ${m(r.byModel.naive)} | ${m(r.byModel.holt)} | ${m(r.byModel.holt_winters)} | ${Object.entries(
          r.chosen,
        )
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')} | ${m(r.weekly)} |`,
      )
    }
  }
  return rows.join('\n')
}
