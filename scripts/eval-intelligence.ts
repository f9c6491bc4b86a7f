// `bun run eval:intelligence`: feeds a week of synthetic readings with anomalies injected at known times
// through a real server (HTTP batches, the same path as any client), then prints how well the detector
// found them and how the forecasts compare with the naive baseline. Deterministic: same seeds, same table.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { loadConfig } from '../src/config'
import {
  chooseStep,
  fitModel,
  MODELS,
  resample,
  type ModelName,
} from '../src/intelligence/forecast'
import { createLogger } from '../src/lib/logger'
import { startServer } from '../src/server'
import {
  generate,
  humiditySpec,
  rng,
  temperatureSpec,
  type InjectedKind,
  type Injection,
  type Series,
  type SeriesSpec,
} from './synthetic'

const DAYS = 7
const STEP = 60_000
const COUNT = DAYS * 1440
const START = Date.UTC(2025, 6, 1)
const DETECTION_SENSORS = 6
const CLEAN_SENSORS = 4
/** A detection up to this long after an injection ends still belongs to it (the return to normal). */
const GRACE = 30
const HORIZONS = [15, 60, 240]
/** Forecast origins: every 600 minutes from day 3 (a batch boundary). */
const FORECAST_EVERY = 600
const THRESHOLD_MAX = 35
const VARIABLES = ['temperatura', 'humedad'] as const
type Variable = (typeof VARIABLES)[number]

interface Sensor {
  id: number
  clean: boolean
  series: Record<Variable, Series>
  injections: Record<Variable, Injection[]>
}

function scaled(spec: SeriesSpec, rand: () => number): SeriesSpec {
  const f = 0.7 + 0.6 * rand()
  return { ...spec, noise: spec.noise * f, amplitude: spec.amplitude * (0.6 + 0.8 * rand()) }
}

/** Anomalies every 5-9 hours from day 2 on, cycling through the kinds, sizes drawn per injection. */
function plan(rand: () => number, sigma: number, withThreshold: boolean): Injection[] {
  const kinds: InjectedKind[] = withThreshold
    ? ['spike', 'stuck', 'drift', 'threshold']
    : ['spike', 'stuck', 'drift']
  const out: Injection[] = []
  let at = 2 * 1440 + Math.floor(rand() * 300)
  let k = Math.floor(rand() * kinds.length)
  while (at < COUNT - 600) {
    const kind = kinds[k++ % kinds.length]!
    const sign = rand() < 0.5 ? -1 : 1
    if (kind === 'spike')
      out.push({ kind, at, length: 1, magnitude: sign * (8 + 6 * rand()) * sigma })
    if (kind === 'stuck') out.push({ kind, at, length: 30 + Math.floor(60 * rand()), magnitude: 0 })
    if (kind === 'drift')
      out.push({
        kind,
        at,
        length: 180 + Math.floor(120 * rand()),
        magnitude: sign * (15 + 10 * rand()) * sigma,
      })
    if (kind === 'threshold') out.push({ kind, at, length: 20, magnitude: 15 })
    at += 300 + Math.floor(240 * rand())
  }
  return out
}

const pct = (x: number) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : 'n/a')
const fixed = (x: number, digits = 3) => (Number.isFinite(x) ? x.toFixed(digits) : 'n/a')
const median = (xs: number[]) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[s.length >> 1]!
}
const p90 = (xs: number[]) => {
  if (xs.length === 0) return NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(0.9 * s.length))]!
}

function table(head: string[], rows: (string | number)[][]) {
  const lines = [`| ${head.join(' | ')} |`, `| ${head.map(() => '---').join(' | ')} |`]
  for (const row of rows) lines.push(`| ${row.join(' | ')} |`)
  return lines.join('\n')
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'vigia-eval-'))
  const config = loadConfig({
    DATABASE_URL: `sqlite:${join(dir, 'eval.db')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'error',
    EVENT_RETENTION_COUNT: '1000000',
  })
  const server = await startServer(config, createLogger(config.logLevel))
  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`${server.url}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    })
    const json = (await res.json().catch(() => undefined)) as any
    if (res.status >= 300)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`)
    return json
  }
  const began = performance.now()
  try {
    await api('PUT', '/api/v1/sensor-types/dht22-sala/thresholds', {
      temperatura: { max: THRESHOLD_MAX, for_readings: 3 },
    })
    const sensors: Sensor[] = []
    for (let s = 0; s < DETECTION_SENSORS + CLEAN_SENSORS; s++) {
      const clean = s >= DETECTION_SENSORS
      const withThreshold = !clean && s % 2 === 0
      const { id } = await api('POST', '/api/v1/sensors', {
        tipo: withThreshold ? 'dht22-sala' : 'temperatura',
        modelo: 'DHT22',
        nombre: `eval-${s}`,
      })
      const rand = rng(1000 + s)
      const specs = {
        temperatura: scaled(temperatureSpec(START, COUNT, STEP), rand),
        humedad: scaled(humiditySpec(START, COUNT, STEP), rand),
      }
      const injections = {
        temperatura: clean ? [] : plan(rand, specs.temperatura.noise, withThreshold),
        humedad: clean ? [] : plan(rand, specs.humedad.noise, false),
      }
      const series = {
        temperatura: generate(specs.temperatura, injections.temperatura, 2000 + s),
        humedad: generate(specs.humedad, injections.humedad, 3000 + s),
      }
      sensors.push({ id, clean, series, injections })
    }

    // Interleaved in time across sensors, 100 minutes per batch (1,000 readings), through HTTP.
    const forecasts: {
      variable: Variable
      horizon: number
      actual: number
      chosen: ModelName
      served: number
      byModel: Partial<Record<ModelName, number>>
    }[] = []
    let ingestMs = 0
    let batches = 0
    const PER_BATCH = 100
    for (let i = 0; i < COUNT; i += PER_BATCH) {
      const body = []
      for (let j = i; j < Math.min(i + PER_BATCH, COUNT); j++)
        for (const sensor of sensors)
          body.push({
            sensor_id: sensor.id,
            temperatura: sensor.series.temperatura.values[j],
            humedad: sensor.series.humedad.values[j],
            timestamp: new Date(sensor.series.temperatura.t[j]!).toISOString(),
          })
      const t0 = performance.now()
      await api('POST', '/api/v1/readings/batch', body)
      ingestMs += performance.now() - t0
      batches += 1
      const stored = i + PER_BATCH
      if (stored >= 3 * 1440 && stored % FORECAST_EVERY === 0) await forecastFrom(stored - 1)
    }

    /** Readings up to index `last` are stored: ask the server, and fit every model on that same history. */
    async function forecastFrom(last: number) {
      for (const sensor of sensors.filter((s) => s.clean))
        for (const variable of VARIABLES)
          for (const horizon of HORIZONS) {
            const target = last + horizon
            if (target >= COUNT) continue
            const pending = await api('POST', '/api/v1/predictions', {
              sensor_id: sensor.id,
              variable,
              horizon_minutes: horizon,
            })
            await server.ctx.intelligence.jobs.idle()
            const done = await api('GET', `/api/v1/predictions/${pending.id}`)
            if (done.status !== 'completed') throw new Error(`prediction failed: ${done.reason}`)
            const series = sensor.series[variable]
            const from = Math.max(0, last + 1 - 7 * 1440)
            const points = series.t
              .slice(from, last + 1)
              .map((t, k) => ({ t, x: series.values[from + k]! }))
            const step = chooseStep(STEP, horizon)
            const { values } = resample(points, step * STEP)
            const h = Math.ceil(horizon / step)
            const byModel: Partial<Record<ModelName, number>> = {}
            for (const model of MODELS) {
              if (model === 'holt_winters' && values.length < 2 * (1440 / step) + 1) continue
              byModel[model] = fitModel(model, values, h, 1440 / step).forecast[h - 1]!
            }
            forecasts.push({
              variable,
              horizon,
              actual: series.values[target]!,
              chosen: done.model,
              served: done.forecast.at(-1).value,
              byModel,
            })
          }
    }

    // Every anomaly the detector raised (threshold and statistical), all statuses.
    const anomalies: any[] = []
    for (let offset = 0; ; offset += 1000) {
      const page = await api('GET', `/api/v1/anomalies?limit=1000&offset=${offset}`)
      anomalies.push(...page.filter((a: any) => a.rule !== 'manual'))
      if (page.length < 1000) break
    }

    const injectedRows: (string | number)[][] = []
    const matched = new Set<number>()
    const kindTotals = new Map<string, { raised: number; correct: number; sameKind: number }>()
    const indexOf = (ms: number) => Math.round((ms - START) / STEP)
    const allInjections = sensors.flatMap((sensor) =>
      VARIABLES.flatMap((variable) =>
        sensor.injections[variable].map((inj) => ({ sensor: sensor.id, variable, inj })),
      ),
    )
    for (const kind of ['spike', 'stuck', 'drift', 'threshold'] as InjectedKind[]) {
      const of = allInjections.filter((x) => x.inj.kind === kind)
      const delays: number[] = []
      for (const { sensor, variable, inj } of of) {
        const hits = anomalies.filter((a) => {
          const i = indexOf(Date.parse(a.first_seen))
          return (
            a.sensor_id === sensor &&
            a.variable === variable &&
            i >= inj.at &&
            i < inj.at + inj.length + GRACE
          )
        })
        for (const a of hits) matched.add(a.id)
        if (hits.length > 0)
          delays.push(Math.min(...hits.map((a) => indexOf(Date.parse(a.first_seen)))) - inj.at)
      }
      injectedRows.push([
        kind,
        of.length,
        delays.length,
        pct(delays.length / of.length),
        fixed(median(delays), 0),
        fixed(p90(delays), 0),
      ])
    }
    for (const a of anomalies) {
      const totals = kindTotals.get(a.kind) ?? { raised: 0, correct: 0, sameKind: 0 }
      totals.raised += 1
      if (matched.has(a.id)) {
        totals.correct += 1
        const i = indexOf(Date.parse(a.first_seen))
        const inj = allInjections.find(
          (x) =>
            x.sensor === a.sensor_id &&
            x.variable === a.variable &&
            i >= x.inj.at &&
            i < x.inj.at + x.inj.length + GRACE,
        )!
        const expected = {
          spike: ['spike'],
          stuck: ['stuck'],
          drift: ['drift'],
          threshold: ['above_max', 'below_min'],
        }[inj.inj.kind]
        if (expected.includes(a.kind)) totals.sameKind += 1
      }
      kindTotals.set(a.kind, totals)
    }
    const falseAlarms = anomalies.filter((a) => !matched.has(a.id))
    let normalReadings = 0
    for (const sensor of sensors)
      for (let i = 0; i < COUNT; i++)
        if (!sensor.series.temperatura.label[i] && !sensor.series.humedad.label[i])
          normalReadings += 1

    const forecastRows: (string | number)[][] = []
    for (const horizon of HORIZONS)
      for (const variable of VARIABLES) {
        const rows = forecasts.filter((f) => f.horizon === horizon && f.variable === variable)
        const mae = (pick: (f: (typeof rows)[number]) => number | undefined) => {
          const errors = rows.map((f) => pick(f)).filter((v): v is number => v !== undefined)
          return errors.length === 0 ? NaN : errors.reduce((s, v) => s + v, 0) / errors.length
        }
        const naive = mae((f) => Math.abs(f.byModel.naive! - f.actual))
        const served = mae((f) => Math.abs(f.served - f.actual))
        const chosenCounts = MODELS.map(
          (m) => `${m} ${rows.filter((f) => f.chosen === m).length}`,
        ).join(', ')
        forecastRows.push([
          `${horizon} min`,
          variable,
          rows.length,
          fixed(naive),
          fixed(
            mae((f) =>
              f.byModel.holt === undefined ? undefined : Math.abs(f.byModel.holt - f.actual),
            ),
          ),
          fixed(
            mae((f) =>
              f.byModel.holt_winters === undefined
                ? undefined
                : Math.abs(f.byModel.holt_winters - f.actual),
            ),
          ),
          fixed(served),
          pct(1 - served / naive),
          chosenCounts,
        ])
      }

    const elapsed = (performance.now() - began) / 1000
    const out = [
      `Synthetic week: ${DETECTION_SENSORS + CLEAN_SENSORS} sensors × ${COUNT.toLocaleString('en')} readings (1 per minute, temperatura + humedad), ` +
        `${DETECTION_SENSORS} of them with ${allInjections.length} injected anomalies from day 2, ${CLEAN_SENSORS} clean; ` +
        `ingested through POST /api/v1/readings/batch in ${batches} batches of ${PER_BATCH * sensors.length} ` +
        `(mean ${fixed(ingestMs / batches, 1)} ms per batch, detection included).`,
      '',
      `Detection by injected kind (a detection counts when its first reading falls inside the injection or up to ${GRACE} readings after it; delay in readings = minutes):`,
      '',
      table(['injected', 'count', 'detected', 'recall', 'median delay', 'p90 delay'], injectedRows),
      '',
      'Precision by what the detector said it saw (correct = overlaps an injection; same kind = and names it right):',
      '',
      table(
        ['detector kind', 'raised', 'correct', 'precision', 'same kind'],
        [...kindTotals].map(([kind, t]) => [
          kind,
          t.raised,
          t.correct,
          pct(t.correct / t.raised),
          pct(t.sameKind / t.raised),
        ]),
      ),
      '',
      `False alarms: ${falseAlarms.length} anomalies outside every injection over ${normalReadings.toLocaleString('en')} normal readings = ` +
        `**${fixed((falseAlarms.length / normalReadings) * 10_000, 2)} per 10,000 normal readings**` +
        (falseAlarms.length > 0
          ? ` (${[...new Set(falseAlarms.map((a) => a.kind))].join(', ')})`
          : '') +
        '.',
      '',
      `Forecast error (MAE) on the ${CLEAN_SENSORS} clean sensors, ${(forecasts.length / (CLEAN_SENSORS * 2 * HORIZONS.length)) | 0} origins every 10 h from day 3, value at the horizon vs the reading then. ` +
        '"served" is what POST /api/v1/predictions answered (model chosen per request by holdout error); the other columns fit each model on the same history.',
      '',
      table(
        [
          'horizon',
          'variable',
          'forecasts',
          'naive MAE',
          'Holt MAE',
          'Holt-Winters MAE',
          'served MAE',
          'served below naive',
          'models chosen',
        ],
        forecastRows,
      ),
      '',
      `(${fixed(elapsed, 0)} s on this machine.)`,
    ]
    console.log(out.join('\n'))
  } finally {
    await server.stop()
    rmSync(dir, { recursive: true, force: true })
  }
}

await main()
