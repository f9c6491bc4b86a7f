// The live dashboard (public/dashboard.html): sensors by location, a chart per selected sensor on any of its
// variables over a picked range (src/web/dashboard-chart.ts), open anomalies as they are detected, acknowledged
// or resolved, and an access panel when the server wants a token. Deep link: ?sensor=<id>&variable=<name>.
import {
  ConnectionRefusedError,
  createApi,
  RealtimeClient,
  type Anomaly,
  type Location,
  type Sensor,
} from '../client'
import { RANGES, type TimeRange } from './chart-time'
import { askForToken } from './dashboard-auth'
import { sessionToken, setSessionToken } from './session'
import { SensorChart, type ChartHost } from './dashboard-chart'
import { byId, clock, el, errorText } from './dom'
import { anomalyText, anomalyTitle, LIVE_STATE_TEXT as STATE_TEXT, say, STATUS_TEXT } from './texts'

/** Units of the original's two variables, until GET /api/v1/variables answers. */
const UNITS = new Map<string, string>([
  ['temperatura', '°C'],
  ['humedad', '%'],
])
const VARIABLE_NAME = /^[a-z][a-z0-9_]{0,62}$/

const params = new URLSearchParams(location.search)
let token = sessionToken()
const api = createApi(location.origin, { token: () => token })
let realtime: RealtimeClient | undefined

const sensors = new Map<number, Sensor>()
const locations = new Map<number, Location>()
/** Open and acknowledged anomalies. */
const anomalies = new Map<number, Anomaly>()
/** The variables each sensor has sent, by sensor id. */
const sensorVariables = new Map<number, Set<string>>()
const charts = new Map<number, SensorChart>()
let deepLink = params.get('sensor')

const host: ChartHost = {
  api: () => api,
  headers: (): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {}),
  anomalies,
  label: sensorLabel,
  unit: (name) => UNITS.get(name) ?? '',
  range: () => range,
  unauthorized: () => needToken('Tu sesión ya no vale: vuelve a iniciar sesión.'),
}

/** Keeps the newer of two versions of a row (an event may overtake the list that was being fetched). */
function merge<T extends { id: number; updated_at?: string; created_at: string }>(
  into: Map<number, T>,
  row: T,
) {
  const current = into.get(row.id)
  const stamp = (r: T) => r.updated_at ?? r.created_at
  if (!current || stamp(current) <= stamp(row)) into.set(row.id, row)
}

/** The HTTP status of an Eden Treaty error. */
const statusOf = (error: unknown) => (error as { status?: number } | null | undefined)?.status

function sensorLabel(id: number) {
  const s = sensors.get(id)
  if (!s) return `Sensor #${id}`
  return `#${s.id} ${s.nombre ?? s.tipo} · ${s.modelo}`
}

function knowVariables(sensorId: number, names: Iterable<string>) {
  let set = sensorVariables.get(sensorId)
  if (!set) sensorVariables.set(sensorId, (set = new Set()))
  let grew = false
  for (const name of names) if (!set.has(name)) grew = Boolean(set.add(name))
  return grew
}

// ---- range picker ----

const rangeSelect = byId<HTMLSelectElement>('range')
const customBox = byId('custom-range')
const fromInput = byId<HTMLInputElement>('range-from')
const toInput = byId<HTMLInputElement>('range-to')
let range: TimeRange = { kind: 'relative', span: RANGES['1h']! }

/** datetime-local's value (local time) of an instant in seconds. */
function localInput(seconds: number) {
  const d = new Date(seconds * 1000 - new Date(seconds * 1000).getTimezoneOffset() * 60_000)
  return d.toISOString().slice(0, 16)
}

function setRange(next: TimeRange) {
  range = next
  for (const chart of charts.values()) void chart.load()
}

rangeSelect.addEventListener('change', () => {
  const span = RANGES[rangeSelect.value]
  customBox.hidden = span !== undefined
  if (span !== undefined) return setRange({ kind: 'relative', span })
  const now = Date.now() / 1000
  fromInput.value ||= localInput(now - 86_400)
  toInput.value ||= localInput(now)
})
byId('range-apply').addEventListener('click', () => {
  const from = Date.parse(fromInput.value) / 1000
  const to = Date.parse(toInput.value) / 1000
  const error = byId('range-error')
  error.hidden = Number.isFinite(from) && Number.isFinite(to) && from < to
  if (!error.hidden) return (error.textContent = 'El inicio del rango debe ser anterior al final.')
  setRange({ kind: 'fixed', from, to })
})
const linked = params.get('range')
if (linked && RANGES[linked] !== undefined) {
  rangeSelect.value = linked
  range = { kind: 'relative', span: RANGES[linked]! }
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
  box.addEventListener('change', () => (box.checked ? void select(s.id) : deselect(s.id)))
  const names = [...(sensorVariables.get(s.id) ?? [])].sort()
  return el(
    'label',
    { class: 'sensor', 'data-sensor-id': s.id },
    box,
    `#${s.id} ${s.nombre ?? s.tipo} · ${s.modelo}`,
    el('span', { class: 'muted variables' }, names.join(', ')),
  )
}

async function select(id: number, variable?: string) {
  if (charts.has(id)) {
    charts.get(id)!.setVariable(variable)
    return
  }
  const s = sensors.get(id)
  const known = sensorVariables.get(id) ?? new Set<string>()
  // Opens on the asked variable, else the sensor's tipo when it is one of its variables (or it has none yet).
  const first =
    variable ??
    (s && VARIABLE_NAME.test(s.tipo) && (known.has(s.tipo) || known.size === 0)
      ? s.tipo
      : undefined)
  const chart = new SensorChart(id, host, first)
  charts.set(id, chart)
  byId('charts').append(chart.card)
  byId('charts-hint').hidden = true
  // Join the sensor's channels first, so nothing falls between the fetch and the live stream.
  await Promise.all([
    realtime?.subscribe(`readings:${id}`),
    realtime?.subscribe(`predictions:${id}`),
  ]).catch((error) => console.warn('subscribe failed', error))
  if (charts.get(id) !== chart) return
  chart.addVariables(known)
  if (chart.variable === first) await chart.load()
}

function deselect(id: number) {
  charts.get(id)?.destroy()
  charts.delete(id)
  byId('charts-hint').hidden = charts.size > 0
  void realtime?.unsubscribe(`readings:${id}`).catch(() => undefined)
  void realtime?.unsubscribe(`predictions:${id}`).catch(() => undefined)
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
    el('strong', { class: 'title' }, anomalyTitle(a)),
    ` · ${sensorLabel(a.sensor_id)}`,
    el('div', { class: 'text' }, anomalyText(a)),
    el(
      'div',
      { class: 'muted' },
      `${clock(a.first_seen)}${a.count > 1 ? ` · ×${a.count}` : ''} · ${say(STATUS_TEXT, a.status)}`,
    ),
    el('div', { class: 'actions' }, ack, resolve),
  )
}

async function setStatus(id: number, status: 'acknowledged' | 'resolved') {
  const { data, error } = await api.api.v1.anomalies({ id }).patch({ status })
  if (statusOf(error) === 401)
    return needToken('Para reconocer o resolver anomalías hace falta iniciar sesión.')
  if (!data) return alert(`No se pudo cambiar la anomalía #${id}: ${errorText(error)}`)
  applyAnomaly(data)
}

function applyAnomaly(a: Anomaly, fresh = false) {
  if (a.status === 'resolved') anomalies.delete(a.id)
  else merge(anomalies, a)
  renderAnomalies(fresh ? a.id : undefined)
}

// ---- the connection, live updates and the lists ----

const status = byId('status')

function wire(client: RealtimeClient) {
  client.onEntity('sensor', (e) => {
    if (e.event_type === 'deleted') {
      sensors.delete(e.entity_id)
      deselect(e.entity_id)
    } else merge(sensors, e.data)
    renderSensors()
  })
  client.onEntity('location', (e) => {
    if (e.event_type === 'deleted') locations.delete(e.entity_id)
    else merge(locations, e.data)
    renderSensors()
  })
  client.onEntity('anomaly', (e) => {
    if (e.event_type === 'deleted') {
      anomalies.delete(e.entity_id)
      return renderAnomalies()
    }
    applyAnomaly(e.data, e.event_type === 'anomaly_detected')
  })
  client.onEntity('reading', (e) => {
    const chart = charts.get(e.data.sensor_id)
    if (knowVariables(e.data.sensor_id, Object.keys(e.data.values ?? {}))) renderSensors()
    if (e.event_type === 'created') chart?.addReading(e.data)
    else chart?.changedReading(e.event_type === 'deleted' ? undefined : e.data)
  })
  client.onEntity('prediction', 'prediction_completed', (e) =>
    charts.get(e.data.sensor_id)?.setPrediction(e.data),
  )
  client.on('state', (state) => {
    if (client !== realtime) return
    status.dataset.state = state
    status.textContent = STATE_TEXT[state]
    if (state === 'reconnecting' && !sensors.size)
      placeholders('Sin conexión con el servidor; reintentando…')
  })
  client.on('disconnected', (d) => {
    // Refused at the start: connect() below says why. Here: a session that ended (expired, revoked).
    if (client === realtime && client.greeting && d.code === 4401 && !d.willReconnect)
      needToken('La sesión ha caducado o se ha cerrado: vuelve a iniciar sesión.')
  })
  client.on('gap', () => {
    const banner = byId('gap')
    banner.textContent =
      'Se perdieron eventos mientras el panel estaba desconectado; los datos se han vuelto a cargar.'
    banner.hidden = false
    void loadAll().then(() => {
      for (const chart of charts.values()) void chart.load()
    })
  })
}

function placeholders(text: string) {
  byId('sensors').replaceChildren(el('span', { class: 'muted' }, text))
  byId('anomalies').replaceChildren(el('span', { class: 'muted' }, text))
}

/** The server wants a (valid) token: say so, and show where to give one. */
function needToken(reason: string) {
  const old = realtime
  realtime = undefined
  void old?.close()
  status.dataset.state = 'closed'
  status.textContent = 'Se necesita un token válido: inicia sesión o pega un token.'
  placeholders('Inicia sesión (arriba) para ver el panel.')
  askForToken(reason, (given) => {
    token = given
    start()
  })
}

async function loadAll() {
  const [s, l, open, acknowledged, latest, variables] = await Promise.all([
    api.api.v1.sensors.get({ query: { limit: 1000 } }),
    api.api.v1.locations.get({ query: { limit: 1000 } }),
    api.api.v1.anomalies.get({ query: { status: 'open', limit: 1000 } }),
    api.api.v1.anomalies.get({ query: { status: 'acknowledged', limit: 1000 } }),
    api.api.v1.latest.get({ query: {} }),
    api.api.v1.variables.get(),
  ])
  const failed = [s, l, open, acknowledged, latest, variables].find((r) => r.error)
  if (statusOf(failed?.error) === 401)
    return needToken('El servidor pide un token para leer estos datos.')
  for (const v of variables.data ?? []) if (v.unit) UNITS.set(v.name, v.unit)
  for (const row of latest.data ?? []) knowVariables(row.sensor_id, Object.keys(row.values))
  for (const row of s.data ?? []) merge(sensors, row)
  for (const row of l.data ?? []) merge(locations, row)
  for (const row of [...(open.data ?? []), ...(acknowledged.data ?? [])]) merge(anomalies, row)
  renderSensors()
  renderAnomalies()
  if (failed) byId('sensors').prepend(el('div', { class: 'banner' }, errorText(failed.error)))
  openDeepLink()
}

/** ?sensor=<id>&variable=<name>: that sensor's chart on that variable, once. */
function openDeepLink() {
  if (!deepLink) return
  const id = Number(deepLink)
  deepLink = null
  const variable = params.get('variable') ?? undefined
  if (!Number.isInteger(id) || !sensors.has(id)) {
    const banner = byId('gap')
    banner.textContent = `El enlace pide el sensor #${params.get('sensor')}, que no existe.`
    banner.hidden = false
    return
  }
  void select(id, variable && VARIABLE_NAME.test(variable) ? variable : undefined)
  renderSensors()
}

/** Live first, then the lists: an event that lands in between is not lost. */
function start() {
  for (const id of [...charts.keys()]) deselect(id)
  const client = new RealtimeClient({
    url: location.origin,
    channels: ['sensors', 'locations', 'anomalies'],
    token,
  })
  realtime = client
  wire(client)
  byId('logout').hidden = !token
  client
    .connect()
    .then(() => (client === realtime ? loadAll() : undefined))
    .catch((error) => {
      if (client !== realtime) return
      if (error instanceof ConnectionRefusedError && error.code === 4401)
        return needToken(
          token
            ? 'El token no es válido o ha caducado: inicia sesión o pega otro.'
            : 'Este servidor pide iniciar sesión (AUTH_MODE=required).',
        )
      status.textContent = `Sin conexión: ${errorText(error)}`
      placeholders(`No se pudo conectar con el servidor: ${errorText(error)}`)
    })
}

byId('logout').addEventListener('click', async () => {
  const old = token
  token = undefined
  setSessionToken(undefined)
  if (old)
    await fetch('/auth/logout', { method: 'POST', headers: { authorization: `Bearer ${old}` } })
  start()
})
addEventListener('resize', () => {
  for (const chart of charts.values()) chart.resize()
})

start()
