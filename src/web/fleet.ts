// The fleet page (public/fleet.html): every sensor with its status, last seen and the latest value of each
// of its variables (with units), grouped by location, live over the WebSocket from a `snapshot=latest`
// start; a map of the located places; a click through to the sensor's chart on the dashboard. Changes are
// applied to the rows they touch, once per animation frame, so 1,000 sensors keep up with a busy stream.
import {
  ConnectionRefusedError,
  RealtimeClient,
  type Location,
  type Reading,
  type Sensor,
  type SensorLatest,
} from '../client'
import { byId, clock, el, errorText } from './dom'
import { askLogin, KeysDialog, showSession } from './fleet-keys'
import { FleetMap, type PlaceStatus } from './fleet-map'
import { sessionApi, sessionToken } from './session'
import { LIVE_STATE_TEXT as STATE_TEXT } from './texts'

type Status = Sensor['status']
const STATUS_TEXT: Record<Status, string> = {
  online: 'en línea',
  offline: 'sin conexión',
  unknown: 'sin datos',
}
const NO_PLACE = 0

interface Live {
  status: Status
  last_seen: string | null
  values: Map<string, { value: number; timestamp: string }>
}

interface Row {
  body: HTMLTableRowElement
  name: HTMLAnchorElement
  status: HTMLTableCellElement
  seen: HTMLTableCellElement
  values: HTMLTableCellElement
  chips: Map<string, { box: HTMLAnchorElement; value: HTMLElement; unit: HTMLElement }>
}

const api = sessionApi()
const sensors = new Map<number, Sensor>()
const locations = new Map<number, Location>()
const live = new Map<number, Live>()
const units = new Map<string, string | null>()
const rows = new Map<number, Row>()
const keys = new KeysDialog(api)
const params = new URLSearchParams(location.search)
const map = new FleetMap(byId('map'), params.get('tiles') ?? undefined)

// ---- batching: what changed since the last frame ----

const dirty = new Set<number>()
let layoutDirty = false
/** A row's status changed: the map's colours may have. */
let statusChanged = false
let frame = 0

function schedule() {
  frame ||= requestAnimationFrame(render)
}
function touch(id: number) {
  dirty.add(id)
  schedule()
}
function relayout() {
  layoutDirty = true
  schedule()
}

function render() {
  frame = 0
  if (layoutDirty) {
    layoutDirty = false
    layout()
    dirty.clear()
  } else {
    for (const id of dirty) paint(id)
    dirty.clear()
  }
  summary()
}

// ---- state ----

function liveOf(id: number): Live {
  let state = live.get(id)
  if (!state) live.set(id, (state = { status: 'unknown', last_seen: null, values: new Map() }))
  return state
}

const later = (a: string | null, b: string | null) => (a === null || (b !== null && b > a) ? b : a)

/**
 * Keeps the newer of two versions of a sensor; its status and last_seen go with it. A row of the REST list
 * (`listed`) may be older than the snapshot and the events already applied (going offline does not change
 * updated_at), so it sets the status only of a sensor the page has no live state for.
 */
function mergeSensor(row: Sensor, listed = false) {
  const current = sensors.get(row.id)
  if (current && current.updated_at > row.updated_at) return
  const moved = !current || current.location_id !== row.location_id
  const renamed = !current || current.nombre !== row.nombre || current.tipo !== row.tipo
  sensors.set(row.id, row)
  const known = live.has(row.id)
  const state = liveOf(row.id)
  if (!listed || !known) state.status = row.status
  state.last_seen = later(state.last_seen, row.last_seen)
  if (moved || !rows.has(row.id)) relayout()
  else {
    if (renamed) rows.get(row.id)!.name.textContent = sensorName(row)
    touch(row.id)
  }
}

/** The snapshot replaces what the page holds of every sensor it covers. */
function applySnapshot(entries: SensorLatest[]) {
  for (const entry of entries) {
    live.set(entry.sensor_id, {
      status: entry.status,
      last_seen: entry.last_seen,
      values: new Map(Object.entries(entry.values)),
    })
    touch(entry.sensor_id)
  }
  learnUnits(entries.flatMap((e) => Object.keys(e.values)))
}

function applyReading(reading: Reading) {
  const state = liveOf(reading.sensor_id)
  for (const [name, value] of Object.entries(reading.values)) {
    const held = state.values.get(name)
    if (!held || held.timestamp <= reading.timestamp)
      state.values.set(name, { value, timestamp: reading.timestamp })
  }
  state.last_seen = later(state.last_seen, reading.created_at)
  learnUnits(Object.keys(reading.values))
  touch(reading.sensor_id)
}

/** After an edit or a deletion the newest value may be another reading's: ask the server. */
async function refreshSensor(id: number) {
  const { data } = await api.api.v1.sensors({ id }).latest.get()
  if (!data) return
  live.set(id, {
    status: data.status,
    last_seen: data.last_seen,
    values: new Map(Object.entries(data.values)),
  })
  touch(id)
}

let unitsPending: Promise<void> | undefined
/** Units of variables not seen before are fetched (once for however many new names arrive together). */
function learnUnits(names: string[]) {
  if (unitsPending || names.every((n) => units.has(n))) return
  for (const n of names) if (!units.has(n)) units.set(n, null)
  unitsPending = loadUnits().finally(() => (unitsPending = undefined))
}
async function loadUnits() {
  const { data } = await api.api.v1.variables.get()
  for (const v of data ?? []) {
    if (units.get(v.name) === v.unit) continue
    units.set(v.name, v.unit)
    for (const [id, state] of live) if (state.values.has(v.name)) dirty.add(id)
  }
  schedule()
}

// ---- the table ----

const sensorName = (s: Sensor) => `#${s.id} ${s.nombre ?? s.tipo} · ${s.modelo}`
const chartUrl = (id: number, variable?: string) =>
  `/dashboard.html?sensor=${id}${variable ? `&variable=${encodeURIComponent(variable)}` : ''}`
const placeOf = (s: Sensor) =>
  s.location_id !== null && locations.has(s.location_id) ? s.location_id : NO_PLACE

function makeRow(s: Sensor): Row {
  const name = el('a', { href: chartUrl(s.id), class: 'sensor-link' }, sensorName(s))
  const keyButton = el('button', { class: 'keys', type: 'button' }, 'Claves')
  keyButton.addEventListener('click', () => void keys.open(sensors.get(s.id)!))
  const row: Row = {
    body: el('tr', { 'data-sensor-id': s.id }),
    name,
    status: el('td', { class: 'status' }),
    seen: el('td', { class: 'seen' }),
    values: el('td', { class: 'values' }),
    chips: new Map(),
  }
  row.body.append(el('td', {}, name), row.status, row.seen, row.values, el('td', {}, keyButton))
  return row
}

/** Brings one row in line with what the page holds: only the cells whose text changed. */
function paint(id: number) {
  const row = rows.get(id)
  const state = live.get(id)
  if (!row || !state) return
  if (row.body.dataset.status !== state.status) {
    statusChanged = true
    row.body.dataset.status = row.status.dataset.status = state.status
    row.status.textContent = STATUS_TEXT[state.status]
  }
  const seen = state.last_seen ? clock(state.last_seen) : '—'
  if (row.seen.textContent !== seen) {
    row.seen.textContent = seen
    row.seen.title = state.last_seen ?? ''
  }
  const first = state.values.keys().next().value
  const link = chartUrl(id, first)
  if (row.name.getAttribute('href') !== link) row.name.href = link
  let added = false
  for (const [name, { value }] of state.values) {
    let chip = row.chips.get(name)
    if (!chip) {
      const valueEl = el('b')
      const unitEl = el('span', { class: 'unit' })
      const box = el(
        'a',
        { href: chartUrl(id, name), 'data-variable': name, class: 'value' },
        el('span', { class: 'name' }, `${name} `),
        valueEl,
        unitEl,
      )
      row.chips.set(name, (chip = { box, value: valueEl, unit: unitEl }))
      added = true
    }
    const text = String(Math.round(value * 100) / 100)
    if (chip.value.textContent !== text) chip.value.textContent = text
    const unit = units.get(name) ? ` ${units.get(name)}` : ''
    if (chip.unit.textContent !== unit) chip.unit.textContent = unit
  }
  if (added)
    row.values.replaceChildren(
      ...[...row.chips.entries()].sort(([a], [b]) => a.localeCompare(b)).map(([, c]) => c.box),
    )
}

/** Rebuilds the groups (a sensor or a place came, went or moved); rows are kept and moved, not remade. */
function layout() {
  const table = byId<HTMLTableElement>('fleet')
  const groups = new Map<number, Sensor[]>()
  for (const s of [...sensors.values()].sort((a, b) => a.id - b.id)) {
    const key = placeOf(s)
    let list = groups.get(key)
    if (!list) groups.set(key, (list = []))
    list.push(s)
  }
  for (const id of rows.keys()) if (!sensors.has(id)) rows.delete(id)
  const places = [...locations.values()].sort((a, b) => a.nombre.localeCompare(b.nombre))
  const bodies: HTMLTableSectionElement[] = []
  for (const place of [...places, undefined]) {
    const list = groups.get(place?.id ?? NO_PLACE)
    if (!list && !place) continue
    const coords =
      place && place.latitud !== null && place.longitud !== null
        ? ` (${place.latitud}, ${place.longitud})`
        : ''
    const title = `${place ? place.nombre : 'Sin ubicación'}${coords} · ${list?.length ?? 0} sensores`
    const body = el(
      'tbody',
      { class: 'group', 'data-location-id': place?.id ?? 'none' },
      el('tr', {}, el('th', { colspan: 5 }, title)),
    )
    for (const s of list ?? []) {
      let row = rows.get(s.id)
      if (!row) rows.set(s.id, (row = makeRow(s)))
      row.name.textContent = sensorName(s)
      paint(s.id)
      body.append(row.body)
    }
    bodies.push(body)
  }
  table.querySelectorAll('tbody.group').forEach((b) => b.remove())
  table.append(...bodies)
  byId('empty').hidden = sensors.size > 0
  byId('empty').textContent = 'No hay sensores.'
  drawMap()
}

function summary() {
  const counts: Record<Status, number> = { online: 0, offline: 0, unknown: 0 }
  for (const id of sensors.keys()) counts[live.get(id)?.status ?? 'unknown'] += 1
  const box = byId('summary')
  const text = `${sensors.size} sensores · ${counts.online} en línea · ${counts.offline} sin conexión · ${counts.unknown} sin datos`
  if (box.textContent !== text) {
    box.textContent = text
    for (const [k, v] of Object.entries(counts)) box.dataset[k] = String(v)
  }
  if (statusChanged) drawMap()
}

/** Each place's colour on the map: offline if any of its sensors is, else online if any is, in one pass. */
function placeStatuses() {
  const out = new Map<number, PlaceStatus>()
  for (const s of sensors.values()) {
    if (s.location_id === null) continue
    const status = live.get(s.id)?.status ?? 'unknown'
    const held = out.get(s.location_id)
    if (held === 'offline' || (held === 'online' && status === 'unknown')) continue
    out.set(s.location_id, status)
  }
  return out
}

function drawMap() {
  statusChanged = false
  const statuses = placeStatuses()
  map.update(locations.values(), (id) => statuses.get(id) ?? 'empty')
  const located = [...locations.values()].filter((l) => l.latitud !== null && l.longitud !== null)
  byId('map-note').textContent =
    `${located.length} de ${locations.size} ubicaciones con coordenadas.`
}

// ---- loading and the live stream ----

async function pages<T>(
  fetchPage: (offset: number) => Promise<{ data: T[] | null; error: unknown }>,
) {
  const all: T[] = []
  for (let offset = 0; ; offset += 1000) {
    const { data, error } = await fetchPage(offset)
    if (!data) throw error
    all.push(...data)
    if (data.length < 1000) return all
  }
}

async function loadAll() {
  try {
    const [s, l] = await Promise.all([
      pages((offset) => api.api.v1.sensors.get({ query: { limit: 1000, offset } })),
      pages((offset) => api.api.v1.locations.get({ query: { limit: 1000, offset } })),
      loadUnits(),
    ])
    for (const place of l) locations.set(place.id, place)
    for (const sensor of s) mergeSensor(sensor, true)
    relayout()
  } catch (error) {
    const box = byId('error')
    box.textContent = `No se pudo cargar la flota: ${errorText(error)}`
    box.hidden = false
  }
}

let realtime: RealtimeClient | undefined
const statusBox = byId('status')

async function goLive() {
  realtime?.close()
  const token = sessionToken()
  const client = (realtime = new RealtimeClient({
    url: location.origin,
    channels: ['sensors', 'readings', 'locations'],
    token,
    snapshot: true,
  }))
  client.on('state', (state) => {
    statusBox.dataset.state = state
    statusBox.textContent = STATE_TEXT[state]
  })
  client.on('snapshot', (msg) => applySnapshot(msg.data))
  client.onEntity('reading', (e) => {
    if (e.event_type === 'created') applyReading(e.data)
    else void refreshSensor(e.data.sensor_id)
  })
  client.onEntity('sensor', (e) => {
    if (e.event_type !== 'deleted') return mergeSensor(e.data)
    sensors.delete(e.entity_id)
    live.delete(e.entity_id)
    relayout()
  })
  client.onEntity('location', (e) => {
    if (e.event_type === 'deleted') locations.delete(e.entity_id)
    else locations.set(e.data.id, e.data)
    relayout()
  })
  try {
    // Live first, then the lists: an event that lands in between is not lost.
    await client.connect()
    await loadAll()
  } catch (error) {
    if (error instanceof ConnectionRefusedError && error.code === 4401) {
      statusBox.textContent = 'Se necesita iniciar sesión'
      if (await askLogin()) await showSession(api, sessionChanged)
    } else statusBox.textContent = `Sin conexión: ${errorText(error)}`
  }
}

/** A login or logout: a page that was refused (or not yet connected) goes live with the new token. */
function sessionChanged() {
  if (realtime?.state !== 'open' && realtime?.state !== 'connecting') void goLive()
}

void showSession(api, sessionChanged)
