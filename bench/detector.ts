// `bun bench/detector.ts`: the detector's cost per reading (step() on a week of synthetic sensor readings
// and on four NAB series, when the corpus is there), beside a reference in the same run: a bare
// rolling median-of-15 z-score, the least a statistical check per reading does. Also the state's JSON
// size and its round trip, paid once per sensor variable and ingest batch. Medians of 7 runs.
import { existsSync, readFileSync } from 'node:fs'
import { detectorOptions, step } from '../src/intelligence/detector'
import { newState, reviveState } from '../src/intelligence/state'
import { generate, humiditySpec, temperatureSpec } from '../scripts/synthetic'
import { header } from './lib/report'

const START = Date.UTC(2025, 6, 1)
const WEEK = 7 * 1440
const RUNS = 7

interface Series {
  name: string
  t: number[]
  x: number[]
}

function nabSeries(): Series[] {
  const dir = process.env.NAB_DIR || '/work/shared/nab'
  const names = [
    'realTweets/Twitter_volume_AAPL.csv',
    'realKnownCause/machine_temperature_system_failure.csv',
    'realKnownCause/nyc_taxi.csv',
    'realAWSCloudwatch/ec2_cpu_utilization_24ae8d.csv',
  ]
  if (!existsSync(`${dir}/data/${names[0]}`)) return []
  return names.map((name) => {
    const rows = readFileSync(`${dir}/data/${name}`, 'utf8')
      .trim()
      .split('\n')
      .slice(1)
      .map((line: string) => line.split(','))
    return {
      name: `NAB ${name}`,
      t: rows.map((r: string[]) => Date.parse(`${r[0]!.replace(' ', 'T')}Z`)),
      x: rows.map((r: string[]) => Number(r[1])),
    }
  })
}

const series: Series[] = [
  { name: 'synthetic temperature, 1/min', ...pick(generate(temperatureSpec(START, WEEK), [], 1)) },
  { name: 'synthetic humidity, 1/min', ...pick(generate(humiditySpec(START, WEEK), [], 2)) },
  ...nabSeries(),
]

function pick(s: { t: number[]; values: number[] }) {
  return { t: s.t, x: s.values }
}

/** The reference: median of the last 15 readings and a running mean absolute deviation. */
function reference(s: Series) {
  const window: number[] = []
  let mad = 0
  let flagged = 0
  for (const x of s.x) {
    if (window.length >= 5) {
      const sorted = [...window].sort((a, b) => a - b)
      const r = x - sorted[sorted.length >> 1]!
      if (Math.abs(r) > 5 * mad * 1.25) flagged += 1
      mad += 0.02 * (Math.abs(r) - mad)
    }
    window.push(x)
    if (window.length > 15) window.shift()
  }
  return flagged
}

function detector(s: Series) {
  const state = newState()
  const options = detectorOptions(undefined, 30)
  let hits = 0
  for (let i = 0; i < s.x.length; i++) hits += step(state, s.t[i]!, s.x[i]!, null, options).length
  return { hits, state }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1]!
const time = (fn: () => unknown) => {
  const t0 = performance.now()
  fn()
  return performance.now() - t0
}

const lines = [
  ...header(
    'series',
    'readings',
    'step() µs/reading',
    'reference µs/reading',
    'ratio',
    'state JSON bytes',
    'JSON round trip µs',
  ),
]
for (const s of series) {
  const step = median(Array.from({ length: RUNS }, () => time(() => detector(s))))
  const ref = median(Array.from({ length: RUNS }, () => time(() => reference(s))))
  const { state } = detector(s)
  const json = JSON.stringify(state)
  const trip = median(
    Array.from({ length: RUNS }, () => time(() => reviveState(JSON.parse(JSON.stringify(state))))),
  )
  const per = (ms: number) => (ms * 1000) / s.x.length
  lines.push(
    `| ${s.name} | ${s.x.length.toLocaleString('en')} | ${per(step).toFixed(2)} | ${per(ref).toFixed(2)} | ${(step / ref).toFixed(2)} | ${json.length.toLocaleString('en')} | ${(trip * 1000).toFixed(0)} |`,
  )
}
console.log(lines.join('\n'))
