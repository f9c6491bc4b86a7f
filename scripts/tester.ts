// The original's CLI tester (websocket_tester.py) on the client library: its menu, or the same modes from flags,
// measuring delivery end to end (sent, received, lost, duplicated, out of order, latency percentiles).
import { createInterface } from 'node:readline/promises'
import { parseArgs } from 'node:util'
import cliProgress from 'cli-progress'
import { createApi, httpBase, RealtimeClient, type Api, type ServerEvent } from '../src/client'

export interface Summary {
  mode: string
  /** The measurements each reading carried (temperatura and humedad: the original body). */
  variables: string[]
  duration_s: number
  rate_requested: number
  rate_achieved: number
  sent: number
  http_errors: number
  received: number
  lost: number
  duplicated: number
  out_of_order: number
  latency_ms: { p50: number; p95: number; p99: number; max: number } | null
  reconnects: number
  gaps: number
  /** Readings that came back with other measurements than were sent. */
  mismatched: number
}

/** Nearest-rank percentile of an ascending list. */
export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!
}

/** 0 when every accepted event came back as sent, 1 when any was lost or changed (or nothing was sent). */
export function exitCode(summary: Summary): number {
  return summary.lost > 0 || summary.mismatched > 0 || summary.sent === 0 ? 1 : 0
}

export function formatSummary(s: Summary): string {
  const ms = (n: number) => n.toFixed(1)
  const latency = s.latency_ms
    ? `p50 ${ms(s.latency_ms.p50)} · p95 ${ms(s.latency_ms.p95)} · p99 ${ms(s.latency_ms.p99)} · máx ${ms(s.latency_ms.max)}`
    : '—'
  return [
    `Resumen (${s.mode}: ${s.duration_s.toFixed(1)} s, ${s.rate_requested} ev/s pedidos, ${s.rate_achieved.toFixed(1)} ev/s logrados)`,
    `  enviados        ${s.sent}`,
    `  recibidos       ${s.received}`,
    `  perdidos        ${s.lost}`,
    `  duplicados      ${s.duplicated}`,
    `  fuera de orden  ${s.out_of_order}`,
    `  latencia ms     ${latency}`,
    `  reconexiones    ${s.reconnects} · huecos ${s.gaps} · errores HTTP ${s.http_errors}`,
    `  variables       ${s.variables.join(', ')} · distintas de lo enviado ${s.mismatched}`,
  ].join('\n')
}

/** The server under test, and the token it may require (AUTH_MODE=required). */
export interface Target {
  url: string
  token?: string
}

const apiFor = (target: Target) => createApi(target.url, { token: target.token })

interface LoadOptions extends Target {
  mode: string
  /** Events to send. */
  count: number
  rate: number
  progress: boolean
  /** Measurement names each reading carries; the original body (temperatura, humedad) when absent. */
  variables?: string[]
}

const ORIGINAL = ['temperatura', 'humedad']

/** Reading n's measurements: a slow wave per variable, within the bounds of temperatura and humedad. */
export function measurements(variables: string[], n: number): Record<string, number> {
  return Object.fromEntries(
    variables.map((name, k) => [
      name,
      Math.round((20 + 10 * k + 5 * Math.sin(n / 10 + k)) * 100) / 100,
    ]),
  )
}

/** A reading body: the original's top-level fields for its two variables, `values` for any other set. */
function readingBody(
  sensorId: number,
  variables: string[] | undefined,
  n: number,
  at: number,
): {
  sensor_id: number
  temperatura?: number
  humedad?: number
  values?: Record<string, number>
  timestamp: string
} {
  const timestamp = new Date(at).toISOString()
  if (!variables)
    return {
      sensor_id: sensorId,
      temperatura: Math.round((20 + 5 * Math.sin(n / 10)) * 100) / 100,
      humedad: 50,
      timestamp,
    }
  return { sensor_id: sensorId, values: measurements(variables, n), timestamp }
}

const sameValues = (a: Record<string, number>, b: Record<string, number> | undefined) =>
  !!b &&
  Object.keys(a).length === Object.keys(b).length &&
  Object.keys(a).every((k) => a[k] === b[k])

const MAX_IN_FLIGHT = 64

/**
 * Creates a sensor of its own, listens on readings:<id> and posts `count` readings at `rate` per second.
 * Each reading's timestamp (start + n ms) identifies it on the way back. A marker test-event after the
 * last one proves that everything sent before it has been delivered (events arrive in seq order).
 */
export async function runLoad(options: LoadOptions): Promise<Summary> {
  const api = apiFor(options)
  const runId = crypto.randomUUID().slice(0, 8)
  const sensor = await api.api.v1.sensors.post({
    tipo: options.variables ? options.variables.join('_').slice(0, 100) : 'temperatura',
    modelo: 'vigia-tester',
    nombre: `tester ${runId}`,
  })
  if (!sensor.data) throw new Error(`cannot create the tester's sensor (HTTP ${sensor.status})`)
  const sensorId = sensor.data.id
  const channel = `readings:${sensorId}`
  const client = new RealtimeClient({
    url: options.url,
    token: options.token,
    channels: [channel],
    userId: `tester-${runId}`,
    dedupe: false,
    reconnect: { initialMs: 100, maxMs: 2000 },
  })

  const sentAt = new Map<number, number>()
  const sentValues = new Map<number, Record<string, number>>()
  let mismatched = 0
  const accepted = new Set<number>()
  const seen = new Set<number>()
  const seqs = new Set<number>()
  const latencies: number[] = []
  let duplicated = 0
  let outOfOrder = 0
  let lastSeq = 0
  let httpErrors = 0
  const marker = `tester-${runId}-fin`
  let markerSeen: () => void = () => {}
  const markerArrived = new Promise<void>((resolve) => (markerSeen = resolve))

  client.on('event', (event: ServerEvent) => {
    const now = performance.now()
    if (seqs.has(event.seq)) return void (duplicated += 1)
    seqs.add(event.seq)
    if (event.seq < lastSeq) outOfOrder += 1
    lastSeq = Math.max(lastSeq, event.seq)
    if (event.type === 'system_event') {
      if (event.message === marker) markerSeen()
      return
    }
    if (event.entity_type !== 'reading' || event.event_type !== 'created') return
    const key = Date.parse(event.data.timestamp)
    seen.add(key)
    const start = sentAt.get(key)
    if (start !== undefined) latencies.push(now - start)
    const values = sentValues.get(key)
    if (values && !sameValues(values, event.data.values)) mismatched += 1
  })

  try {
    await client.connect()
    const base = Date.now()
    const started = performance.now()
    const inFlight = new Set<Promise<void>>()
    const bar =
      options.progress && options.count > 1
        ? new cliProgress.SingleBar(
            {
              format:
                ' {bar} {percentage}% | {value}/{total} enviados | recibidos {received} | errores {errors}',
              stream: process.stderr,
              hideCursor: true,
            },
            cliProgress.Presets.shades_classic,
          )
        : undefined
    bar?.start(options.count, 0, { received: 0, errors: 0 })
    const tick =
      bar && setInterval(() => bar.update({ received: seen.size, errors: httpErrors }), 250)

    for (let n = 0; n < options.count; n++) {
      const due = started + (n * 1000) / options.rate
      const wait = due - performance.now()
      if (wait > 1) await Bun.sleep(wait)
      while (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight)
      const key = base + n
      const send = async () => {
        const body = readingBody(sensorId, options.variables, n, key)
        sentValues.set(
          key,
          body.values ?? { temperatura: body.temperatura!, humedad: body.humedad! },
        )
        sentAt.set(key, performance.now())
        const res = await api.api.v1.readings.post(body).catch(() => undefined)
        if (res?.status === 201) accepted.add(key)
        else {
          httpErrors += 1
          sentAt.delete(key)
        }
        bar?.increment()
      }
      const request: Promise<void> = send().finally(() => inFlight.delete(request))
      inFlight.add(request)
    }
    await Promise.all(inFlight)
    const elapsed = (performance.now() - started) / 1000

    await api.api.v1.ws['test-event'].post(undefined, { query: { channel, message: marker } })
    await Promise.race([markerArrived, Bun.sleep(15_000)])
    if (tick) clearInterval(tick)
    bar?.update({ received: seen.size, errors: httpErrors })
    bar?.stop()

    const received = [...accepted].filter((key) => seen.has(key)).length
    const sorted = latencies.sort((a, b) => a - b)
    return {
      mode: options.mode,
      variables: options.variables ?? ORIGINAL,
      duration_s: elapsed,
      rate_requested: options.rate,
      rate_achieved: elapsed > 0 ? accepted.size / elapsed : accepted.size,
      sent: accepted.size,
      http_errors: httpErrors,
      received,
      lost: accepted.size - received,
      duplicated,
      out_of_order: outOfOrder,
      latency_ms: sorted.length
        ? {
            p50: percentile(sorted, 50),
            p95: percentile(sorted, 95),
            p99: percentile(sorted, 99),
            max: sorted.at(-1)!,
          }
        : null,
      reconnects: client.stats.reconnects,
      gaps: client.stats.gaps,
      mismatched,
    }
  } finally {
    await client.close()
    await api.api.v1.sensors({ id: sensorId }).delete()
  }
}

async function sendTestEvent(api: Api, channel: string, message: string) {
  const { data, error, status } = await api.api.v1.ws['test-event'].post(undefined, {
    query: { channel, message },
  })
  if (!data) throw new Error(`test event refused (HTTP ${status}): ${JSON.stringify(error)}`)
  return data
}

async function showStats(api: Api) {
  const { data, status } = await api.api.v1.ws.stats.get()
  if (!data) throw new Error(`stats unavailable (HTTP ${status})`)
  const rows = Object.entries(data.channels).map(
    ([name, c]) =>
      `  ${name.padEnd(18)} ${String(c.connections).padStart(5)}  ${c.users.map((u) => u.user_id).join(', ')}`,
  )
  return [
    `Canales con conexiones: ${data.total_channels} · conexiones: ${data.total_connections}`,
    `  ${'canal'.padEnd(18)} ${'conex'.padStart(5)}  usuarios`,
    ...rows,
  ].join('\n')
}

const USAGE = `Uso: bun run tester [opciones]
  sin --mode: menú interactivo
  --mode single|continuous|custom|test-event|stats
  --duration <s>     duración de las pruebas continuas (300 por defecto)
  --rate <ev/s>      eventos por segundo (10 por defecto)
  --url <url>        servidor (http://localhost:8000 por defecto)
  --channel <canal>  canal del evento de prueba (general)
  --message <texto>  mensaje del evento de prueba (Prueba)
  --token <jwt>      token para un servidor con AUTH_MODE=required
  --variables <a,b>  medidas de cada lectura (co2,presion,…); sin ella, temperatura y humedad
  --json             imprimir el resumen en JSON
Sale con 1 si se perdió algún evento, 2 si no pudo probar.`

const MENU = `
=== Vigía · tester WebSocket ===
1. Prueba única
2. Pruebas continuas (5 minutos)
3. Pruebas continuas personalizadas
4. Enviar evento de prueba
5. Ver estadísticas
0. Salir`

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined || raw.trim() === '') return fallback
  const value = Number(raw)
  if (!Number.isFinite(value) || value <= 0)
    throw new UsageError(`--${name} must be a positive number`)
  return value
}

class UsageError extends Error {}

/** `--variables co2,presion`: measurement names as the server takes them. */
function variableList(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined
  const names = [
    ...new Set(
      raw
        .split(',')
        .map((v) => v.trim())
        .filter(Boolean),
    ),
  ]
  if (names.length === 0 || names.some((name) => !/^[a-z][a-z0-9_]{0,62}$/.test(name)))
    throw new UsageError(
      '--variables must list measurement names such as co2,presion (lower-case letters, digits and _)',
    )
  return names
}

async function load(
  target: Target,
  mode: string,
  duration: number,
  rate: number,
  json: boolean,
  variables?: string[],
) {
  const count = mode === 'single' ? 1 : Math.max(1, Math.round(duration * rate))
  const log = json ? () => {} : (line: string) => console.log(line)
  log(
    mode === 'single'
      ? `Prueba única contra ${target.url}`
      : `Pruebas continuas contra ${target.url}: ${duration} s a ${rate} ev/s (${count} eventos)`,
  )
  const summary = await runLoad({
    ...target,
    mode,
    count,
    rate,
    progress: !json && Boolean(process.stderr.isTTY) && duration >= 3,
    variables,
  })
  console.log(json ? JSON.stringify(summary) : formatSummary(summary))
  return summary
}

async function menu(target: Target) {
  const rl = createInterface({ input: process.stdin, output: process.stdout, terminal: false })
  const lines = rl[Symbol.asyncIterator]()
  const ask = async (question: string) => {
    process.stdout.write(question)
    const next = await lines.next()
    if (next.done) return undefined
    return next.value.trim()
  }
  let worst = 0
  try {
    for (;;) {
      console.log(MENU)
      const choice = await ask('Opción: ')
      if (choice === undefined || choice === '0' || choice === 'q') break
      try {
        if (choice === '1')
          worst = Math.max(worst, exitCode(await load(target, 'single', 0, 1, false)))
        else if (choice === '2')
          worst = Math.max(worst, exitCode(await load(target, 'continuous', 300, 10, false)))
        else if (choice === '3') {
          const duration = positive('duration', await ask('Duración en segundos [60]: '), 60)
          const rate = positive('rate', await ask('Eventos por segundo [10]: '), 10)
          worst = Math.max(worst, exitCode(await load(target, 'custom', duration, rate, false)))
        } else if (choice === '4') {
          const channel = (await ask('Canal [general]: ')) || 'general'
          const message = (await ask('Mensaje [Prueba]: ')) || 'Prueba'
          const sent = await sendTestEvent(apiFor(target), channel, message)
          console.log(`Evento de prueba enviado a ${sent.channel} (seq ${sent.event.seq})`)
        } else if (choice === '5') console.log(await showStats(apiFor(target)))
        else console.log('Opción no válida: elige 0-5.')
      } catch (error) {
        console.log(`Error: ${error instanceof Error ? error.message : String(error)}`)
      }
    }
  } finally {
    rl.close()
  }
  return worst
}

async function main(argv: string[]): Promise<number> {
  const { values } = parseArgs({
    args: argv,
    options: {
      mode: { type: 'string' },
      duration: { type: 'string' },
      rate: { type: 'string' },
      url: { type: 'string', default: 'http://localhost:8000' },
      channel: { type: 'string', default: 'general' },
      message: { type: 'string', default: 'Prueba' },
      token: { type: 'string' },
      variables: { type: 'string' },
      json: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  if (values.help) {
    console.log(USAGE)
    return 0
  }
  const url = httpBase(values.url!)
  const health = await fetch(`${url}/health`).catch(() => undefined)
  if (!health?.ok) {
    console.error(`No responde ningún servidor Vigía en ${url} (GET /health).`)
    return 2
  }
  const target: Target = { url, token: values.token }
  const duration = positive('duration', values.duration, 300)
  const rate = positive('rate', values.rate, 10)
  const variables = variableList(values.variables)
  switch (values.mode) {
    case undefined:
      return menu(target)
    case 'single':
    case 'continuous':
    case 'custom':
      return exitCode(await load(target, values.mode, duration, rate, values.json!, variables))
    case 'test-event': {
      const sent = await sendTestEvent(apiFor(target), values.channel!, values.message!)
      console.log(
        values.json
          ? JSON.stringify(sent)
          : `Evento de prueba enviado a ${sent.channel} (seq ${sent.event.seq})`,
      )
      return 0
    }
    case 'stats':
      console.log(
        values.json
          ? JSON.stringify((await apiFor(target).api.v1.ws.stats.get()).data)
          : await showStats(apiFor(target)),
      )
      return 0
    default:
      throw new UsageError(`unknown --mode ${values.mode}\n${USAGE}`)
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (error) => {
      console.error(error instanceof Error ? error.message : String(error))
      process.exit(2)
    },
  )
}
