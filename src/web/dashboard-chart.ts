// One sensor's chart on the dashboard: any of its variables over the picked range, drawn from `aggregate`
// (average line inside a min–max band, the bucket chosen from the range and the chart's width), live readings
// folded in as they arrive, the latest completed forecast ahead and the open anomalies as red points.
import uPlot from 'uplot'
import type { Anomaly, Api, Prediction, Reading } from '../client'
import {
  bucketParam,
  chooseBucket,
  instantText,
  labelBoxes,
  timeAxis,
  windowOf,
  type TimeRange,
} from './chart-time'
import { clock, el, errorText } from './dom'
import { predictionText } from './texts'

/** What a chart needs from the page. */
export interface ChartHost {
  api(): Api
  /** Headers for plain fetches (the bearer token, when there is one). */
  headers(): Record<string, string>
  anomalies: Map<number, Anomaly>
  label(sensorId: number): string
  unit(variable: string): string
  range(): TimeRange
  /** Called on a 401, so the page can ask for a token. */
  unauthorized(): void
}

/** One row of GET /api/v1/readings/aggregate (CONTRACT §8). */
export interface AggregateRow {
  sensor_id: number
  variable: string
  bucket: string
  avg: number | null
  min: number | null
  max: number | null
  count: number
}

interface Bucket {
  sum: number
  min: number
  max: number
  count: number
}

const HEIGHT = 240
const MAX_LIVE = 5000
const seconds = (iso: string) => Date.parse(iso) / 1000
const round = (value: number) => Math.round(value * 100) / 100

export class SensorChart {
  readonly card: HTMLElement
  readonly picker: HTMLSelectElement
  variable: string | undefined
  private readonly box: HTMLElement
  private readonly latestText: HTMLElement
  private readonly info: HTMLElement
  private readonly forecastInfo: HTMLElement
  /** The sensor's own variables, by name. */
  private readonly variables = new Set<string>()
  private buckets = new Map<number, Bucket>()
  private bucket = 60
  /** Readings that came over the WebSocket after the history was read, by id: [time, value]. */
  private live = new Map<number, [number, number]>()
  /** The history covers readings before this instant; live ones from it on are folded in. */
  private loadedTo = Infinity
  private queued: Reading[] | undefined
  private latest: { value: number; timestamp: string } | undefined
  private prediction: Prediction | undefined
  private plot: uPlot | undefined
  private frame = 0
  private generation = 0
  private reloadTimer: ReturnType<typeof setTimeout> | undefined
  private readonly slide: ReturnType<typeof setInterval>
  /** The last instant of the chart's data (a forecast may reach past now). */
  private dataEnd = 0
  private labels: { splits: number[]; labels: string[] } = { splits: [], labels: [] }

  constructor(
    readonly sensorId: number,
    private readonly host: ChartHost,
    variable?: string,
  ) {
    this.variable = variable
    this.box = el('div', { class: 'chart' })
    this.latestText = el('div', { class: 'latest' }, 'Sin lecturas todavía')
    this.info = el('div', { class: 'muted history' })
    this.forecastInfo = el('div', { class: 'muted forecast' }, 'Sin pronóstico')
    this.picker = el('select', { class: 'variable', 'aria-label': 'Variable' })
    this.picker.addEventListener('change', () => this.setVariable(this.picker.value))
    this.card = el(
      'section',
      { class: 'panel chart-card', 'data-sensor-id': sensorId },
      el('div', { class: 'row' }, el('h2', {}, host.label(sensorId)), this.picker),
      this.latestText,
      this.box,
      this.info,
      this.forecastInfo,
    )
    this.renderPicker()
    // A relative range slides with the clock.
    this.slide = setInterval(() => {
      if (this.host.range().kind === 'relative') this.draw()
    }, 10_000)
  }

  /** Adds variables the sensor has; the first known one is charted if none was chosen. */
  addVariables(names: Iterable<string>) {
    let added = false
    for (const name of names)
      if (!this.variables.has(name)) {
        this.variables.add(name)
        added = true
      }
    if (!added) return
    this.renderPicker()
    if (!this.variable) this.setVariable(preferred(this.variables))
  }

  private renderPicker() {
    const names = new Set(this.variables)
    if (this.variable) names.add(this.variable)
    const options = [...names].sort().map((name) => {
      const unit = this.host.unit(name)
      return el(
        'option',
        { value: name, selected: name === this.variable },
        unit ? `${name} (${unit})` : name,
      )
    })
    this.picker.replaceChildren(
      ...(options.length ? options : [el('option', { value: '' }, 'sin variables')]),
    )
    this.picker.value = this.variable ?? ''
  }

  setVariable(name: string | undefined) {
    if (!name || name === this.variable) return
    this.variable = name
    this.plot?.destroy()
    this.plot = undefined
    this.renderPicker()
    void this.load()
  }

  /** Reads the history of the shown variable over the range, its latest value and its latest forecast. */
  async load() {
    const generation = ++this.generation
    clearTimeout(this.reloadTimer)
    const variable = this.variable
    const api = this.host.api()
    const latest = api.api.v1.sensors({ id: this.sensorId }).latest.get()
    if (!variable) {
      const { data } = await latest
      if (generation !== this.generation) return
      this.addVariables(Object.keys(data?.values ?? {}))
      if (!this.variable) this.draw()
      return
    }
    const range = this.host.range()
    const { from, to } = windowOf(range)
    const bucket = chooseBucket(to - from, this.width())
    const start = Math.floor(from / bucket) * bucket
    this.queued = []
    this.card.dataset.loading = 'true'
    const [rows, last, prediction] = await Promise.all([
      this.fetchAggregate(variable, start, to, bucket),
      latest,
      api.api.v1.predictions.get({
        query: { sensor_id: this.sensorId, variable, status: 'completed', limit: 1 },
      }),
    ])
    if (generation !== this.generation) return
    this.bucket = bucket
    this.loadedTo = to
    this.buckets = new Map()
    this.live = new Map()
    if (Array.isArray(rows)) {
      for (const row of rows) {
        if (row.variable !== variable || row.sensor_id !== this.sensorId || !row.count) continue
        const avg = row.avg ?? row.min ?? 0
        this.buckets.set(seconds(row.bucket), {
          sum: avg * row.count,
          min: row.min ?? avg,
          max: row.max ?? avg,
          count: row.count,
        })
      }
      this.info.textContent = `${rows.length} intervalos de ${bucketParam(bucket)} (media y mín–máx)`
      delete this.card.dataset.historyError
    } else {
      this.info.textContent = `No se pudo leer el histórico: ${rows.error}`
      this.card.dataset.historyError = 'true'
    }
    this.addVariables(Object.keys(last.data?.values ?? {}))
    const value = last.data?.values[variable]
    this.latest = value ? { value: value.value, timestamp: value.timestamp } : undefined
    this.prediction = undefined
    if (prediction.data?.[0]) this.setPrediction(prediction.data[0])
    const queued = this.queued ?? []
    this.queued = undefined
    for (const reading of queued) this.addReading(reading)
    this.card.dataset.bucket = bucketParam(bucket)
    this.card.dataset.bucketSeconds = String(bucket)
    this.card.dataset.span = String(Math.round(to - from))
    delete this.card.dataset.loading
    this.draw()
  }

  private async fetchAggregate(variable: string, from: number, to: number, bucket: number) {
    const query = new URLSearchParams({
      sensor_id: String(this.sensorId),
      variable,
      from: new Date(from * 1000).toISOString(),
      to: new Date(to * 1000).toISOString(),
      bucket: bucketParam(bucket),
      fn: 'avg,min,max,count',
    })
    try {
      const res = await fetch(`${location.origin}/api/v1/readings/aggregate?${query}`, {
        headers: this.host.headers(),
      })
      const body = await res.json().catch(() => undefined)
      if (res.status === 401) this.host.unauthorized()
      if (!res.ok) return { error: errorText({ value: body }) || `HTTP ${res.status}` }
      return body as AggregateRow[]
    } catch (error) {
      return { error: errorText(error) }
    }
  }

  /** Reloads soon: a change the folded buckets cannot take (a correction, a deletion, a late reading). */
  scheduleReload() {
    clearTimeout(this.reloadTimer)
    this.reloadTimer = setTimeout(() => void this.load(), 1000)
  }

  addReading(reading: Reading) {
    this.addVariables(Object.keys(reading.values))
    const value = this.variable === undefined ? undefined : reading.values[this.variable]
    if (value === undefined || this.variable === undefined) return
    if (this.queued) return void this.queued.push(reading)
    const t = seconds(reading.timestamp)
    if (!this.latest || reading.timestamp >= this.latest.timestamp)
      this.latest = { value, timestamp: reading.timestamp }
    const { from, to } = windowOf(this.host.range())
    if (this.host.range().kind === 'fixed' && (t < from || t >= to)) return
    // Before the history's end it may already be counted: read the buckets again instead.
    if (t < this.loadedTo || this.live.has(reading.id)) return this.scheduleReload()
    this.live.set(reading.id, [t, value])
    if (this.live.size > MAX_LIVE) this.live.delete(this.live.keys().next().value!)
    const start = Math.floor(t / this.bucket) * this.bucket
    const b = this.buckets.get(start)
    if (b) {
      b.sum += value
      b.count += 1
      b.min = Math.min(b.min, value)
      b.max = Math.max(b.max, value)
    } else this.buckets.set(start, { sum: value, min: value, max: value, count: 1 })
    this.draw()
  }

  /** A reading changed or went away: folded sums cannot take it back, so the history is read again. */
  changedReading(reading: Reading | undefined) {
    if (!reading || (this.variable && reading.values[this.variable] !== undefined))
      this.scheduleReload()
  }

  setPrediction(prediction: Prediction) {
    if (prediction.variable !== this.variable || prediction.status !== 'completed') return
    if (this.prediction && this.prediction.id > prediction.id) return
    this.prediction = prediction
    this.draw()
  }

  /** Redraws on the next frame, once however many changes came in. */
  draw() {
    if (this.frame) return
    this.frame = requestAnimationFrame(() => {
      this.frame = 0
      this.render()
    })
  }

  private render() {
    const variable = this.variable
    const range = this.host.range()
    const { from, to } = windowOf(range)
    const forecast = this.prediction?.forecast ?? []
    const marks = [...this.host.anomalies.values()].filter(
      (a) => a.sensor_id === this.sensorId && a.variable === variable,
    )
    // uPlot wants one x axis: every instant of every series, the others null there.
    const rows = new Map<number, (number | null)[]>()
    const at = (x: number) => {
      let row = rows.get(x)
      if (!row) rows.set(x, (row = [x, null, null, null, null, null, null, null, null]))
      return row
    }
    let points = 0
    for (const [start, b] of this.buckets) {
      if (start + this.bucket <= from || start >= (range.kind === 'fixed' ? to : to + this.bucket))
        continue
      const row = at(start + this.bucket / 2)
      row[1] = round(b.sum / b.count)
      row[2] = b.min
      row[3] = b.max
      points += b.count
    }
    for (const [t, v] of this.live.values()) if (t >= from) at(t)[4] = v
    for (const f of forecast) {
      const row = at(seconds(f.timestamp))
      row[5] = f.value
      row[6] = f.lower ?? null
      row[7] = f.upper ?? null
    }
    for (const a of marks) at(seconds(a.last_seen))[8] = a.value
    const sorted = [...rows.values()].sort((a, b) => a[0]! - b[0]!)
    this.dataEnd = sorted.at(-1)?.[0] ?? 0
    const data = sorted.length
      ? ((sorted[0] ?? []).map((_, i) => sorted.map((row) => row[i]!)) as uPlot.AlignedData)
      : (Array.from({ length: 9 }, () => []) as unknown as uPlot.AlignedData)

    if (variable) {
      if (!this.plot) this.plot = new uPlot(this.options(variable), data, this.box)
      else this.plot.setData(data)
    }

    const unit = variable ? this.host.unit(variable) : ''
    this.latestText.textContent = this.latest
      ? `Última: ${round(this.latest.value)}${unit ? ` ${unit}` : ''} · ${clock(this.latest.timestamp)} · ${points} lecturas en el rango`
      : variable
        ? `Sin lecturas de ${variable} todavía`
        : 'Sin lecturas todavía'
    this.forecastInfo.textContent = this.prediction
      ? predictionText(this.prediction)
      : 'Sin pronóstico'
    const set = this.card.dataset
    set.variable = variable ?? ''
    set.points = String(points)
    set.latest = this.latest ? String(this.latest.value) : ''
    set.livePoints = String(this.live.size)
    set.bands = String(sorted.filter((r) => r[2] !== null && r[3] !== null).length)
    set.forecastPoints = String(forecast.length)
    set.anomalyMarks = String(marks.length)
  }

  private options(variable: string): uPlot.Options {
    const unit = this.host.unit(variable)
    const band = 'rgba(37, 99, 235, 0.15)'
    const forecastBand = 'rgba(126, 34, 206, 0.15)'
    return {
      width: this.width(),
      height: HEIGHT,
      scales: {
        x: {
          time: true,
          range: () => {
            const w = windowOf(this.host.range())
            // Forecast points may reach past now (uPlot's own max is padded around a single point).
            const end = this.host.range().kind === 'relative' ? Math.max(w.to, this.dataEnd) : w.to
            return [w.from, end]
          },
        },
      },
      axes: [
        timeAxis((splits, labels) => (this.labels = { splits, labels })),
        { label: unit ? `${variable} (${unit})` : variable },
      ],
      series: [
        { label: 'Hora', value: (_u, v) => instantText(v) },
        { label: `${variable} (media)`, stroke: '#2563eb', width: 2, spanGaps: true },
        { label: 'mín', stroke: 'rgba(37, 99, 235, 0.35)', spanGaps: true },
        { label: 'máx', stroke: 'rgba(37, 99, 235, 0.35)', spanGaps: true },
        {
          label: 'en vivo',
          stroke: '#0f766e',
          paths: () => null,
          points: { show: true, size: 5, fill: '#0f766e' },
        },
        { label: 'pronóstico', stroke: '#7e22ce', dash: [6, 4], spanGaps: true },
        { label: 'pron. mín', stroke: 'rgba(126, 34, 206, 0.35)', spanGaps: true },
        { label: 'pron. máx', stroke: 'rgba(126, 34, 206, 0.35)', spanGaps: true },
        {
          label: 'anomalías',
          stroke: '#dc2626',
          paths: () => null,
          points: { show: true, size: 10, fill: '#dc2626' },
        },
      ],
      bands: [
        { series: [3, 2], fill: band },
        { series: [7, 6], fill: forecastBand },
      ],
      hooks: {
        draw: [
          (u) => {
            // Where each time label went, so a test can check they are 24-hour and never overlap.
            const boxes = labelBoxes(u, this.labels.splits, this.labels.labels)
            this.card.dataset.xLabels = JSON.stringify(boxes)
            this.card.dataset.labelsFor = String(this.bucket)
          },
        ],
      },
    }
  }

  private width() {
    return Math.max(320, this.box.clientWidth || 600)
  }

  resize() {
    if (!this.plot) return
    this.plot.setSize({ width: this.width(), height: HEIGHT })
    const { from, to } = windowOf(this.host.range())
    if (chooseBucket(to - from, this.width()) !== this.bucket) this.scheduleReload()
  }

  destroy() {
    this.generation++
    cancelAnimationFrame(this.frame)
    clearTimeout(this.reloadTimer)
    clearInterval(this.slide)
    this.plot?.destroy()
    this.card.remove()
  }
}

/** The variable a chart opens on: the original's temperatura first, else the first by name. */
function preferred(names: Set<string>) {
  if (names.has('temperatura')) return 'temperatura'
  return [...names].sort()[0]
}
