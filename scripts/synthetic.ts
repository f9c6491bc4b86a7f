// Seeded synthetic sensor series: daily cycle, weather, slow drift, noise and resolution, with anomalies
// injected at known readings (spikes, stuck values, slow drifts, threshold excursions).

export type InjectedKind = 'spike' | 'stuck' | 'drift' | 'threshold'

export interface Injection {
  kind: InjectedKind
  /** Index of the first affected reading, and how many readings it lasts. */
  at: number
  length: number
  /** spike / threshold: offset added; drift: total offset reached at the end of the ramp. */
  magnitude: number
}

export interface SeriesSpec {
  start: number
  stepMs: number
  count: number
  mean: number
  /** Half the peak-to-trough daily swing; negative puts the peak at night (humidity). */
  amplitude: number
  noise: number
  /** Benign change of the mean per day (season, building). */
  trendPerDay: number
  /** Size of the multi-day weather swings. */
  weather: number
  resolution: number
  min?: number
  max?: number
}

export interface Series {
  t: number[]
  values: number[]
  /** The injection covering each reading, if any. */
  label: (InjectedKind | null)[]
}

/** mulberry32: small, fast, good enough for test data, and the same on every machine. */
export function rng(seed: number) {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

export function gaussian(rand: () => number) {
  const u = Math.max(rand(), 1e-12)
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand())
}

const DAY = 86_400_000

/** The series without noise or anomalies, at time t (what a perfect sensor would report). */
function truth(spec: SeriesSpec, waves: { period: number; phase: number }[], t: number) {
  const days = (t - spec.start) / DAY
  // Daily cycle peaking mid-afternoon (15:00 UTC).
  const daily = spec.amplitude * Math.cos((2 * Math.PI * (t % DAY)) / DAY - (2 * Math.PI * 15) / 24)
  const weather = waves.reduce(
    (sum, w) =>
      sum + (spec.weather / waves.length) * Math.sin(2 * Math.PI * (days / w.period) + w.phase),
    0,
  )
  return spec.mean + spec.trendPerDay * days + daily + weather
}

export function generate(spec: SeriesSpec, injections: Injection[], seed: number): Series {
  const rand = rng(seed)
  const waves = [2.3, 3.7, 5.9].map((period) => ({ period, phase: rand() * 2 * Math.PI }))
  const t: number[] = []
  const values: number[] = []
  const label: (InjectedKind | null)[] = Array(spec.count).fill(null)
  for (let i = 0; i < spec.count; i++) {
    const at = spec.start + i * spec.stepMs
    t.push(at)
    values.push(truth(spec, waves, at) + spec.noise * gaussian(rand))
  }
  for (const inj of injections) {
    for (let j = 0; j < inj.length && inj.at + j < spec.count; j++) {
      const i = inj.at + j
      label[i] = inj.kind
      if (inj.kind === 'spike' || inj.kind === 'threshold') values[i]! += inj.magnitude
      else if (inj.kind === 'stuck') values[i] = values[inj.at - 1]!
      else values[i]! += (inj.magnitude * (j + 1)) / inj.length
    }
  }
  const q = spec.resolution
  for (let i = 0; i < values.length; i++) {
    let v = Math.round(values[i]! / q) * q
    if (spec.min !== undefined) v = Math.max(spec.min, v)
    if (spec.max !== undefined) v = Math.min(spec.max, v)
    values[i] = Math.round(v * 1000) / 1000
  }
  return { t, values, label }
}

export const temperatureSpec = (start: number, count: number, stepMs = 60_000): SeriesSpec => ({
  start,
  stepMs,
  count,
  mean: 22,
  amplitude: 3,
  noise: 0.15,
  trendPerDay: 0.2,
  weather: 1.5,
  resolution: 0.1,
})

export const humiditySpec = (start: number, count: number, stepMs = 60_000): SeriesSpec => ({
  start,
  stepMs,
  count,
  mean: 55,
  amplitude: -8,
  noise: 0.6,
  trendPerDay: -0.3,
  weather: 5,
  resolution: 0.1,
  min: 0,
  max: 100,
})
