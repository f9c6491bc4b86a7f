// The live dashboard (public/dashboard.html): sensors by location, a uPlot chart per selected sensor with its
// latest forecast band ahead of the readings, and open anomalies as they are detected, acknowledged or resolved.
import uPlot from 'uplot'
import {
  ConnectionRefusedError,
  createApi,
  RealtimeClient,
  type Anomaly,
  type Location,
  type Prediction,
  type Reading,
  type Sensor,
} from '../client'
import { byId, clock, el, errorText } from './dom'

type Variable = 'temperatura' | 'humedad'
const UNITS: Record<Variable, string> = { temperatura: '°C', humedad: '%' }
const MAX_POINTS = 500

// Under AUTH_MODE=required: open the page as /dashboard.html?token=<JWT> (kept for the tab's session).
const token =
  new URLSearchParams(location.search).get('token') ??
  sessionStorage.getItem('vigia.token') ??
  undefined
if (token) sessionStorage.setItem('vigia.token', token)
const api = createApi(location.origin, { token })
const realtime = new RealtimeClient({
  url: location.origin,
  channels: ['sensors', 'locations', 'anomalies'],
  token,
})

const sensors = new Map<number, Sensor>()
const locations = new Map<number, Location>()
/** Open and acknowledged anomalies. */
const anomalies = new Map<number, Anomaly>()
const charts = new Map<number, SensorChart>()
const variableSelect = byId<HTMLSelectElement>('variable')
let variable = variableSelect.value as Variable

/** Keeps the newer of two versions of a row (an event may overtake the list that was being fetched). */
function merge<T extends { id: number; updated_at?: string; created_at: string }>(
  into: Map<number, T>,
  row: T,
) {
  const current = into.get(row.id)
  const stamp = (r: T) => r.updated_at ?? r.created_at
  if (!current || stamp(current) <= stamp(row)) into.set(row.id, row)
}

const seconds = (iso: string) => Date.parse(iso) / 1000
const round = (value: number) => Math.round(value * 100) / 100

class SensorChart {
  readonly card: HTMLElement
  private readonly box: HTMLElement
  private readonly latest: HTMLElement
  private readonly forecastInfo: HTMLElement
  private readonly readings = new Map<number, Reading>()
  private prediction: Prediction | undefined
  private plot: uPlot | undefined
  private frame = 0

  constructor(readonly sensorId: number) {
    this.box = el('div', { class: 'chart' })
    this.latest = el('div', { class: 'latest' }, 'Sin lecturas todavía')
    this.forecastInfo = el('div', { class: 'muted forecast' }, 'Sin pronóstico')
    this.card = el(
      'section',
      { class: 'panel chart-card', 'data-sensor-id': sensorId },
      el('h2', {}, sensorLabel(sensorId)),
      this.latest,
      this.box,
      this.forecastInfo,
    )
  }

  async load() {
    const [readings, predictions] = await Promise.all([
      api.api.v1.readings.get({
        query: { sensor_id: this.sensorId, limit: MAX_POINTS, order: 'desc' },
      }),
      this.fetchPrediction(),
    ])
    for (const r of readings.data ?? []) this.readings.set(r.id, r)
    if (predictions) this.setPrediction(predictions)
    this.draw()
  }

  /** The latest completed forecast of the shown variable. */
  private async fetchPrediction() {
    const { data } = await api.api.v1.predictions.get({
      query: { sensor_id: this.sensorId, variable, status: 'completed', limit: 1 },
    })
    return data?.[0]
  }

  async changeVariable() {
    this.prediction = undefined
    const prediction = await this.fetchPrediction()
    if (prediction) this.setPrediction(prediction)
    this.draw()
  }

  addReading(reading: Reading) {
    this.readings.set(reading.id, reading)
    if (this.readings.size > MAX_POINTS) {
      const oldest = [...this.readings.values()].sort(
        (a, b) => seconds(a.timestamp) - seconds(b.timestamp),
      )[0]!
      this.readings.delete(oldest.id)
    }
    this.draw()
  }

  removeReading(id: number) {
    if (this.readings.delete(id)) this.draw()
  }

  setPrediction(prediction: Prediction) {
    if (prediction.variable !== variable || prediction.status !== 'completed') return
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
    const shown = [...this.readings.values()]
      .filter((r) => r[variable] !== null)
      .sort((a, b) => seconds(a.timestamp) - seconds(b.timestamp))
    const forecast = this.prediction?.forecast ?? []
    const marks = [...anomalies.values()].filter(
      (a) => a.sensor_id === this.sensorId && a.variable === variable,
    )
    // uPlot wants one x axis: every instant of every series, the others null there.
    const rows = new Map<number, (number | null)[]>()
    const at = (x: number) => {
      let row = rows.get(x)
      if (!row) rows.set(x, (row = [x, null, null, null, null, null]))
      return row
    }
    for (const r of shown) at(seconds(r.timestamp))[1] = r[variable]
    for (const f of forecast) {
      const row = at(seconds(f.timestamp))
      row[2] = f.value
      row[3] = f.lower ?? null
      row[4] = f.upper ?? null
    }
    for (const a of marks) at(seconds(a.last_seen))[5] = a.value
    const sorted = [...rows.values()].sort((a, b) => a[0]! - b[0]!)
    const data = [0, 1, 2, 3, 4, 5].map((i) => sorted.map((row) => row[i]!)) as uPlot.AlignedData

    if (!this.plot) this.plot = new uPlot(this.options(), data, this.box)
    else this.plot.setData(data)

    const last = shown.at(-1)
    this.latest.textContent = last
      ? `Última: ${round(last[variable]!)} ${UNITS[variable]} · ${clock(last.timestamp)} · ${shown.length} lecturas`
      : 'Sin lecturas todavía'
    this.forecastInfo.textContent = this.prediction
      ? `Pronóstico #${this.prediction.id} (${this.prediction.model ?? 'modelo'}, ${this.prediction.horizon_minutes} min): ${forecast.length} puntos`
      : 'Sin pronóstico'
    this.card.dataset.points = String(shown.length)
    this.card.dataset.latest = last ? String(last[variable]) : ''
    this.card.dataset.forecastPoints = String(forecast.length)
    this.card.dataset.anomalyMarks = String(marks.length)
  }

  private options(): uPlot.Options {
    const band = 'rgba(126, 34, 206, 0.15)'
    return {
      width: Math.max(320, this.box.clientWidth || 600),
      height: 240,
      scales: { x: { time: true } },
      series: [
        {},
        { label: variable, stroke: '#2563eb', width: 2, spanGaps: true },
        { label: 'pronóstico', stroke: '#7e22ce', dash: [6, 4], spanGaps: true },
        { label: 'mín', stroke: 'rgba(126, 34, 206, 0.35)', spanGaps: true },
        { label: 'máx', stroke: 'rgba(126, 34, 206, 0.35)', spanGaps: true },
        {
          label: 'anomalías',
          stroke: '#dc2626',
          paths: () => null,
          points: { show: true, size: 10, fill: '#dc2626' },
        },
      ],
      bands: [{ series: [4, 3], fill: band }],
    }
  }

  resize() {
    this.plot?.setSize({ width: Math.max(320, this.box.clientWidth), height: 240 })
  }

  destroy() {
    cancelAnimationFrame(this.frame)
    this.plot?.destroy()
    this.card.remove()
  }
}

function sensorLabel(id: number) {
  const s = sensors.get(id)
  if (!s) return `Sensor #${id}`
  return `#${s.id} ${s.nombre ?? s.tipo} · ${s.modelo}`
}

// ---- sensors and locations ----

function renderSensors() {
  const box = byId('sensors')
  const groups = new Map<number | null, Sensor[]>()
  for (const s of [...sensors.values()].sort((a, b) => a.id - b.id)) {
    const key = s.location_id !== null && locations.has(s.location_id) ? s.location_id : null
    groups.set(key, [...(groups.get(key) ?? []), s])
  }
  const sections = [...locations.values()]
    .sort((a, b) => a.nombre.localeCompare(b.nombre))
    .map((l) => locationSection(l, groups.get(l.id) ?? []))
  if (groups.has(null)) sections.push(locationSection(undefined, groups.get(null)!))
  box.replaceChildren(
    ...(sections.length ? sections : [el('span', { class: 'muted' }, 'No hay sensores.')]),
  )
}

function locationSection(place: Location | undefined, list: Sensor[]) {
  const coords =
    place && place.latitud !== null && place.longitud !== null
      ? ` (${place.latitud}, ${place.longitud})`
      : ''
  return el(
    'div',
    { class: 'location', 'data-location-id': place?.id },
    el('h3', {}, place ? `${place.nombre}${coords}` : 'Sin ubicación'),
    ...list.map(sensorRow),
  )
}

function sensorRow(s: Sensor) {
  const box = el('input', { type: 'checkbox', checked: charts.has(s.id) })
  box.addEventListener('change', () => (box.checked ? select(s.id) : deselect(s.id)))
  return el(
    'label',
    { class: 'sensor', 'data-sensor-id': s.id },
    box,
    `#${s.id} ${s.nombre ?? s.tipo} · ${s.modelo}`,
  )
}

async function select(id: number) {
  if (charts.has(id)) return
  const chart = new SensorChart(id)
  charts.set(id, chart)
  byId('charts').append(chart.card)
  byId('charts-hint').hidden = true
  // Join the sensor's channels first, so nothing falls between the fetch and the live stream.
  await Promise.all([
    realtime.subscribe(`readings:${id}`),
    realtime.subscribe(`predictions:${id}`),
  ]).catch((error) => console.warn('subscribe failed', error))
  await chart.load()
}

function deselect(id: number) {
  charts.get(id)?.destroy()
  charts.delete(id)
  byId('charts-hint').hidden = charts.size > 0
  void realtime.unsubscribe(`readings:${id}`).catch(() => undefined)
  void realtime.unsubscribe(`predictions:${id}`).catch(() => undefined)
}

// ---- anomalies ----

function renderAnomalies(fresh?: number) {
  const list = [...anomalies.values()].sort((a, b) => b.last_seen.localeCompare(a.last_seen))
  byId('anomaly-count').textContent = `(${list.length})`
  byId('anomalies').replaceChildren(
    ...(list.length ? list.map(anomalyItem) : [el('span', { class: 'muted' }, 'Ninguna.')]),
  )
  if (fresh !== undefined) {
    const item = document.querySelector(`[data-anomaly-id="${fresh}"]`)
    item?.classList.add('fresh')
    setTimeout(() => item?.classList.remove('fresh'), 3000)
  }
  for (const chart of charts.values()) chart.draw()
}

function anomalyItem(a: Anomaly) {
  const ack = el('button', { class: 'ack', disabled: a.status !== 'open' }, 'Reconocer')
  const resolve = el('button', { class: 'resolve' }, 'Resolver')
  ack.addEventListener('click', () => setStatus(a.id, 'acknowledged'))
  resolve.addEventListener('click', () => setStatus(a.id, 'resolved'))
  return el(
    'div',
    {
      class: 'anomaly',
      'data-anomaly-id': a.id,
      'data-status': a.status,
      'data-severity': a.severity,
    },
    el('strong', {}, a.severity),
    ` · ${sensorLabel(a.sensor_id)} · ${a.variable} = ${a.value}`,
    el(
      'div',
      { class: 'muted' },
      `${a.message ?? a.rule} · ${clock(a.first_seen)}${a.count > 1 ? ` · ×${a.count}` : ''} · ${a.status === 'open' ? 'abierta' : 'reconocida'}`,
    ),
    el('div', { class: 'actions' }, ack, resolve),
  )
}

async function setStatus(id: number, status: 'acknowledged' | 'resolved') {
  const { data, error } = await api.api.v1.anomalies({ id }).patch({ status })
  if (!data) return alert(`No se pudo cambiar la anomalía #${id}: ${errorText(error)}`)
  applyAnomaly(data)
}

function applyAnomaly(a: Anomaly, fresh = false) {
  if (a.status === 'resolved') anomalies.delete(a.id)
  else merge(anomalies, a)
  renderAnomalies(fresh ? a.id : undefined)
}

// ---- live updates ----

realtime.onEntity('sensor', (e) => {
  if (e.event_type === 'deleted') {
    sensors.delete(e.entity_id)
    deselect(e.entity_id)
  } else merge(sensors, e.data)
  renderSensors()
})
realtime.onEntity('location', (e) => {
  if (e.event_type === 'deleted') locations.delete(e.entity_id)
  else merge(locations, e.data)
  renderSensors()
})
realtime.onEntity('anomaly', (e) => {
  if (e.event_type === 'deleted') {
    anomalies.delete(e.entity_id)
    return renderAnomalies()
  }
  applyAnomaly(e.data, e.event_type === 'anomaly_detected')
})
realtime.onEntity('reading', (e) => {
  const chart = charts.get(e.data.sensor_id)
  if (e.event_type === 'deleted') chart?.removeReading(e.entity_id)
  else chart?.addReading(e.data)
})
realtime.onEntity('prediction', 'prediction_completed', (e) =>
  charts.get(e.data.sensor_id)?.setPrediction(e.data),
)

const status = byId('status')
const STATE_TEXT = {
  idle: 'Desconectado',
  connecting: 'Conectando…',
  open: 'En vivo',
  reconnecting: 'Reconectando…',
  closed: 'Desconectado',
}
realtime.on('state', (state) => {
  status.dataset.state = state
  status.textContent = STATE_TEXT[state]
})
realtime.on('gap', () => {
  const banner = byId('gap')
  banner.textContent =
    'Se perdieron eventos mientras el panel estaba desconectado; los datos se han vuelto a cargar.'
  banner.hidden = false
  void loadAll()
})

variableSelect.addEventListener('change', () => {
  variable = variableSelect.value as Variable
  for (const chart of charts.values()) void chart.changeVariable()
})
addEventListener('resize', () => {
  for (const chart of charts.values()) chart.resize()
})

async function loadAll() {
  const [s, l, open, acknowledged] = await Promise.all([
    api.api.v1.sensors.get({ query: { limit: 1000 } }),
    api.api.v1.locations.get({ query: { limit: 1000 } }),
    api.api.v1.anomalies.get({ query: { status: 'open', limit: 1000 } }),
    api.api.v1.anomalies.get({ query: { status: 'acknowledged', limit: 1000 } }),
  ])
  for (const row of s.data ?? []) merge(sensors, row)
  for (const row of l.data ?? []) merge(locations, row)
  for (const row of [...(open.data ?? []), ...(acknowledged.data ?? [])]) merge(anomalies, row)
  renderSensors()
  renderAnomalies()
  const failed = [s, l, open, acknowledged].find((r) => r.error)
  if (failed) byId('sensors').prepend(el('div', { class: 'banner' }, errorText(failed.error)))
}

// Live first, then the lists: an event that lands in between is not lost.
realtime
  .connect()
  .then(loadAll)
  .catch((error) => {
    status.textContent =
      error instanceof ConnectionRefusedError && error.code === 4401
        ? 'Se necesita un token válido: abre /dashboard.html?token=…'
        : `Sin conexión: ${errorText(error)}`
  })
