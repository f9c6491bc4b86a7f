// The test client page (public/websocket_client.html): channels, live event log, stats and test events,
// all through the client library (reconnect with backoff + jitter, resume with since, gap reporting).
import {
  ConnectionRefusedError,
  createApi,
  httpBase,
  RealtimeClient,
  type Api,
  type ClientState,
  type EntityEvent,
  type ServerEvent,
} from '../client'
import { byId, clock, el, errorText } from './dom'
import { anomalyText, anomalyTitle, predictionText } from './texts'

const urlInput = byId<HTMLInputElement>('url')
const channelSelect = byId<HTMLSelectElement>('channel')
const subIdInput = byId<HTMLInputElement>('sub-id')
const channelsBox = byId('channels')
const userIdInput = byId<HTMLInputElement>('user-id')
const tokenInput = byId<HTMLInputElement>('token')
const connectButton = byId<HTMLButtonElement>('connect')
const disconnectButton = byId<HTMLButtonElement>('disconnect')
const statusText = byId('status')
const gapBanner = byId('gap')
const logBox = byId('log')
const filterInput = byId<HTMLInputElement>('filter')
const pauseButton = byId<HTMLButtonElement>('pause')
const maxLinesSelect = byId<HTMLSelectElement>('max-lines')
const logInfo = byId('log-info')

urlInput.value = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/ws`

let client: RealtimeClient | undefined
let api: Api = createApi(location.origin)
/** Channels chosen while disconnected; the connected client keeps its own set. */
let chosen: string[] = []
let paused = false
const held: HTMLElement[] = []

const STATE_TEXT: Record<ClientState, string> = {
  idle: 'Desconectado',
  connecting: 'Conectando…',
  open: 'Conectado',
  reconnecting: 'Reconectando…',
  closed: 'Desconectado',
}

// ---- event log: coloured, filtered, pausable, bounded ----

const maxLines = () => Number(maxLinesSelect.value)
const matches = (line: HTMLElement) => {
  const q = filterInput.value.trim().toLowerCase()
  return !q || (line.textContent ?? '').toLowerCase().includes(q)
}

function trim() {
  while (logBox.childElementCount > maxLines()) logBox.firstElementChild!.remove()
  if (held.length > maxLines()) held.splice(0, held.length - maxLines())
}

function showInfo() {
  const shown = Array.from(logBox.children).filter((c) => !(c as HTMLElement).hidden).length
  logInfo.textContent = `${shown}/${logBox.childElementCount} visibles${paused ? ` · ${held.length} en espera` : ''}`
}

function append(line: HTMLElement) {
  const atBottom = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 24
  line.hidden = !matches(line)
  logBox.append(line)
  trim()
  if (atBottom) logBox.scrollTop = logBox.scrollHeight
}

function log(kind: string, text: string, attrs: Record<string, string | number> = {}) {
  const line = el('div', { class: `line ${kind}`, ...attrs }, `${clock()}  ${text}`)
  if (paused) held.push(line)
  else append(line)
  trim()
  showInfo()
}

function logEvent(event: ServerEvent) {
  if (event.type === 'system_event')
    return log(
      `ev-system-${event.level}`,
      `#${event.seq}  system.${event.level}  ${event.message}  ${JSON.stringify(event.data)}`,
      { 'data-seq': event.seq, 'data-kind': 'system', 'data-event': event.level },
    )
  log(
    `ev-${event.event_type}`,
    `#${event.seq}  ${event.entity_type}.${event.event_type}  id=${event.entity_id}${summary(event)}  ${JSON.stringify(event.data)}`,
    {
      'data-seq': event.seq,
      'data-kind': event.entity_type,
      'data-event': event.event_type,
      'data-entity-id': event.entity_id,
    },
  )
}

/** A Spanish line ahead of the JSON for the events whose codes are English (anomalies, predictions). */
function summary(event: EntityEvent) {
  if (event.event_type === 'deleted') return ''
  if (event.entity_type === 'anomaly')
    return `  «${anomalyTitle(event.data)}: ${anomalyText(event.data)}»`
  if (event.entity_type === 'prediction') return `  «${predictionText(event.data)}»`
  return ''
}

filterInput.addEventListener('input', () => {
  for (const line of Array.from(logBox.children))
    (line as HTMLElement).hidden = !matches(line as HTMLElement)
  showInfo()
})
pauseButton.addEventListener('click', () => {
  paused = !paused
  pauseButton.textContent = paused ? 'Reanudar' : 'Pausar'
  if (!paused) for (const line of held.splice(0)) append(line)
  showInfo()
})
byId('clear').addEventListener('click', () => {
  logBox.replaceChildren()
  held.length = 0
  showInfo()
})
maxLinesSelect.addEventListener('change', () => (trim(), showInfo()))

// ---- channels ----

function pickedChannel() {
  const id = subIdInput.value.trim()
  return id ? `${channelSelect.value}:${id}` : channelSelect.value
}

function renderChannels() {
  const names = client ? [...client.channels] : chosen
  channelsBox.replaceChildren(
    ...names.map((name) =>
      el('span', { class: 'chip', 'data-channel': name }, name, removeButton(name)),
    ),
  )
  if (names.length === 0)
    channelsBox.append(el('span', { class: 'muted' }, `(se usará ${pickedChannel()})`))
}

function removeButton(name: string) {
  const button = el('button', { title: `Quitar ${name}` }, '×')
  button.addEventListener('click', async () => {
    if (!client) {
      chosen = chosen.filter((c) => c !== name)
      return renderChannels()
    }
    const pending = client.unsubscribe(name)
    renderChannels()
    await pending.catch((error) =>
      log('ev-error', `No se pudo salir de ${name}: ${errorText(error)}`),
    )
  })
  return button
}

byId('add-channel').addEventListener('click', async () => {
  const name = pickedChannel()
  if (!client) {
    if (!chosen.includes(name)) chosen.push(name)
    return renderChannels()
  }
  const pending = client.subscribe(name)
  renderChannels()
  await pending.catch((error) =>
    log('ev-error', `No se pudo suscribir a ${name}: ${errorText(error)}`),
  )
  renderChannels()
})
channelSelect.addEventListener('change', renderChannels)
subIdInput.addEventListener('input', renderChannels)

// ---- connection ----

function setState(state: ClientState, detail = '') {
  statusText.dataset.state = state
  statusText.textContent = `${STATE_TEXT[state]}${detail}`
  const active = state !== 'closed' && state !== 'idle'
  connectButton.disabled = active
  disconnectButton.disabled = !active
}

function showCounters() {
  byId('last-seq').textContent = client?.lastSeq === undefined ? '—' : String(client.lastSeq)
  byId('epoch').textContent = client?.epoch ?? '—'
  byId('event-count').textContent = String(client?.stats.events ?? 0)
  byId('reconnects').textContent = String(client?.stats.reconnects ?? 0)
}

function connect() {
  const url = urlInput.value.trim()
  const token = tokenInput.value.trim() || undefined
  let next: RealtimeClient
  try {
    next = new RealtimeClient({
      url,
      channels: chosen.length ? [...chosen] : [pickedChannel()],
      userId: userIdInput.value.trim() || undefined,
      token,
    })
    api = createApi(httpBase(url), { token: () => next.currentToken })
  } catch (error) {
    return log('ev-error', `URL no válida: ${errorText(error)}`)
  }
  client = next
  gapBanner.hidden = true
  next.on('state', (state) => {
    if (state !== 'reconnecting') setState(state)
    if (state === 'closed' && client === next) {
      // The next Connect joins what is picked then (and what is added after), not the old channels.
      chosen = []
      client = undefined
      renderChannels()
    }
  })
  next.on('disconnected', (d) => {
    const why = `${d.code}${d.reason ? `: ${d.reason}` : ''}`
    if (d.willReconnect) {
      const delay = `${((d.delayMs ?? 0) / 1000).toFixed(1)} s`
      setState('reconnecting', ` en ${delay} (intento ${d.attempt})`)
      log('ev-note', `Conexión cerrada (${why}); reintento ${d.attempt} en ${delay}`)
    } else log('ev-note', `Conexión cerrada (${why})`)
  })
  next.on('connected', ({ message, resumed, since }) => {
    const channels = (message.channels ?? [message.channel]).join(', ')
    const resume = resumed
      ? ` · reanudado desde seq ${since}: ${message.recovered ? 'sin pérdidas' : 'con hueco'}`
      : ''
    log('ev-connection', `Conectado a ${channels} (último seq ${message.last_seq})${resume}`, {
      'data-resumed': String(resumed),
    })
    showCounters()
    renderChannels()
    void refreshStats()
  })
  next.on('gap', (gap) => {
    const text =
      gap.reason === 'new_history'
        ? `Hueco no recuperable: el servidor tiene otra historia de eventos (epoch ${gap.serverEpoch}); lo ocurrido después de seq ${gap.since} no se puede recuperar.`
        : `Hueco no recuperable: el servidor ya no conserva los eventos posteriores a seq ${gap.since} (los conserva desde seq ${gap.oldestSeq}).`
    gapBanner.textContent = text
    gapBanner.hidden = false
    log('ev-gap', text)
  })
  next.on('message', (msg) => {
    if (msg.type === 'connection' && msg.status !== 'connected')
      log(
        'ev-connection',
        `${msg.status === 'subscribed' ? 'Suscrito a' : 'Fuera de'} ${msg.channel}`,
      )
  })
  next.on('serverError', (e) => log('ev-error', `error ${e.code}: ${e.message}`))
  next.on('event', (event) => {
    logEvent(event)
    showCounters()
  })
  renderChannels()
  next.connect().catch((error) => {
    if (error instanceof ConnectionRefusedError)
      log('ev-error', `El servidor rechazó la conexión: ${error.message}`)
  })
}

connectButton.addEventListener('click', connect)
disconnectButton.addEventListener('click', () => void client?.close())

// ---- stats and test events ----

async function refreshStats() {
  const summary = byId('stats-summary')
  const { data, error } = await api.api.v1.ws.stats.get()
  if (error) {
    summary.textContent = `No se pudieron leer las estadísticas: ${errorText(error)}`
    return
  }
  summary.textContent = `${data.total_channels} canales con conexiones · ${data.total_connections} conexiones`
  byId('stats').replaceChildren(
    ...Object.entries(data.channels).map(([name, channel]) =>
      el(
        'tr',
        { 'data-channel': name },
        el('td', {}, name),
        el('td', { class: 'connections' }, String(channel.connections)),
        el('td', {}, channel.users.map((u) => u.user_id).join(', ')),
      ),
    ),
  )
}

byId('stats-refresh').addEventListener('click', () => void refreshStats())
setInterval(() => {
  if (document.visibilityState === 'visible') void refreshStats()
}, 5000)

byId('send-test').addEventListener('click', async () => {
  const result = byId('test-result')
  const channel = client ? ([...client.channels][0] ?? 'general') : pickedChannel()
  const { data, error } = await api.api.v1.ws['test-event'].post(undefined, {
    query: {
      channel,
      message: byId<HTMLInputElement>('test-message').value || 'Prueba',
      level: byId<HTMLSelectElement>('test-level').value as 'info' | 'warning' | 'error',
    },
  })
  result.textContent = data
    ? `Enviado a ${data.channel} (seq ${data.event.seq})`
    : `Error: ${errorText(error)}`
})

setState('idle')
renderChannels()
void refreshStats()
