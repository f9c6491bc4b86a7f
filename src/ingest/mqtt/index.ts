// MQTT ingestion: a persistent QoS 1 subscription whose messages are stored, in arrival order and in
// batches, through the readings service; each is acknowledged to the broker only once committed.
import mqtt, { type IPublishPacket, type IStream, type MqttClient } from 'mqtt'
import mqttPacket from 'mqtt-packet'
import type { AppContext } from '../../context'
import { sensors } from '../../db/schema'
import { existingIds, insertOne } from '../../lib/crud'
import { AppError, UnknownReferenceError } from '../../lib/errors'
import { createReadings } from '../../modules/readings/service'
import type { ReadingCreate } from '../../modules/readings/model'
import { sensorResource } from '../../modules/sensors/service'
import { parsePayload, Rejection, sensorIdOf, sensorLevel, type RejectReason } from './payload'
import { ReportThrottle } from './throttle'

type IngestContext = Omit<AppContext, 'mqtt'>

export interface MqttStatus {
  status: 'ok' | 'degraded' | 'disabled'
  connected: boolean
  broker: string | null
  topic: string | null
  client_id: string | null
  last_error: string | null
}

export interface MqttIngest {
  /** Connects in the background; an unreachable broker is retried with backoff, never fatal. */
  start(): void
  /** Finishes the batch being stored (acknowledging it), leaves the rest to the broker, disconnects. */
  stop(): Promise<void>
  status(): MqttStatus
}

/** Unacknowledged messages the broker may have out to us at once (MQTT 5 Receive Maximum). */
const RECEIVE_MAXIMUM = 1000
/** Past this many queued messages mqtt.js is not asked for more (a broker may ignore the above). */
const MAX_QUEUED = 2 * RECEIVE_MAXIMUM
const MAX_BATCH_MESSAGES = 1000
/** The most readings one transaction takes, as POST /api/v1/readings/batch. */
const MAX_BATCH_READINGS = 10_000
/** Auto-registration keeps to 32-bit ids: one huge id from a stray topic would push every later id past it. */
const MAX_REGISTERED_ID = 2_147_483_647
const RECONNECT_MIN_MS = 1000
const RECONNECT_MAX_MS = 30_000
const RETRY_MIN_MS = 100
const RETRY_MAX_MS = 5000
/** A failure that is not a known transient one is retried this often, then the message is dropped. */
const MAX_UNKNOWN_FAILURES = 5
const STOP_GRACE_MS = 5000
const TRANSIENT_SQLITE = /^SQLITE_(BUSY|LOCKED|FULL|IOERR|CANTOPEN|PROTOCOL)/

const message = (error: unknown) => (error instanceof Error ? error.message : String(error))

/** The broker URL without credentials, for health and logs. */
function safeUrl(raw: string) {
  const url = new URL(raw)
  url.username = ''
  url.password = ''
  return url.toString()
}

function isTransient(error: unknown) {
  if (error instanceof AppError) return error.status >= 500
  const code = (error as { code?: unknown })?.code
  return typeof code === 'string' && TRANSIENT_SQLITE.test(code)
}

/**
 * A sensor's tipo from what it sent: the names of its measurements joined with _, the original's two
 * first (temperatura_humedad, as before), then the others as they first appeared; at most 100 characters.
 */
export function tipoOf(readings: ReadingCreate[]) {
  const names = new Set<string>()
  for (const r of readings) for (const name in r.values ?? {}) names.add(name)
  const ordered = [
    ...['temperatura', 'humedad'].filter((name) => names.has(name)),
    ...[...names].filter((name) => name !== 'temperatura' && name !== 'humedad'),
  ]
  let tipo = ordered[0] ?? 'desconocido'
  for (const name of ordered.slice(1)) {
    if (tipo.length + 1 + name.length > 100) break
    tipo += `_${name}`
  }
  return tipo
}

/** A sensor created on first contact: its tipo says which measures it sent. */
async function registerSensor(
  ctx: IngestContext,
  id: number,
  readings: ReadingCreate[],
  topic: string,
) {
  const tipo = tipoOf(readings)
  await ctx.emitter.transact(async (tx, emit) => {
    if ((await existingIds(tx, sensors, [id])).has(id)) return
    const now = Date.now()
    await insertOne(tx, emit, sensorResource, {
      id,
      tipo,
      modelo: 'desconocido',
      nombre: `MQTT ${topic}`.slice(0, 200),
      location_id: null,
      created_at: now,
      updated_at: now,
    })
  })
}

interface Entry {
  packet: IPublishPacket
  /** The connection it came on: its PUBACK may only go back on that one. */
  stream: IStream
}

interface Item extends Entry {
  topic: string
  sensorId: number | null
  /** Undefined once rejected: it is then only reported and acknowledged. */
  readings: ReadingCreate[] | undefined
  rejection?: { reason: RejectReason; detail: string }
}

/** Tells mqtt.js not to send the PUBACK itself: the batch sends it once the message is stored. */
const DEFERRED = new Error('acknowledged once stored')

export function createMqttIngest(ctx: IngestContext): MqttIngest {
  const { config, log, metrics } = ctx
  const settings = config.mqtt
  const level = sensorLevel(settings.topic)
  const broker = settings.url ? safeUrl(settings.url) : null
  const throttle = new ReportThrottle()

  let client: MqttClient | undefined
  let connected = false
  let subscribeError: string | null = null
  let stopping = false
  let outage = false
  let connectError: string | null = null
  let storeError: string | null = null
  let reconnectDelay = RECONNECT_MIN_MS
  const queue: Entry[] = []
  /** mqtt.js's "next message" callback, held while the queue is full (backpressure to the socket). */
  let held: (() => void) | undefined
  let worker: Promise<void> | undefined
  let wake = () => {}
  let stopped: Promise<void> | undefined

  const system = (level: 'info' | 'warning', text: string, data: Record<string, unknown>) => {
    if (stopping) return
    ctx.emitter
      .system({ level, message: text, data: { module: 'mqtt', ...data } })
      .catch((error) => log.warn('mqtt: could not emit a system event', { error: message(error) }))
  }

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms)
      wake = () => {
        clearTimeout(timer)
        resolve()
      }
    })

  /** Marks a message as refused for good; it is reported and acknowledged with its batch. */
  function reject(item: Item, reason: RejectReason, detail: string) {
    item.readings = undefined
    item.rejection = { reason, detail }
  }

  function report({ topic, sensorId, rejection }: Item) {
    if (!rejection) return
    const { reason, detail } = rejection
    metrics.mqtt.messages.inc({ outcome: 'rejected' })
    metrics.mqtt.rejected.inc({ reason })
    const key = sensorId === null ? `topic:${topic.slice(0, 200)}` : String(sensorId)
    const verdict = throttle.admit(key, Date.now())
    if (verdict.report) {
      const fields = { topic, sensor_id: sensorId, reason, detail, suppressed: verdict.suppressed }
      log.warn('mqtt: rejected a message', fields)
      system(
        'warning',
        sensorId === null
          ? `Mensaje MQTT rechazado en ${topic.slice(0, 200)}`
          : `Mensaje MQTT rechazado del sensor ${sensorId}`,
        fields,
      )
    } else if (verdict.floodStarted) {
      log.warn(
        `mqtt: more than ${throttle.maxPerWindow} rejected messages in a minute; for a minute more are only counted (vigia_mqtt_rejected_total)`,
      )
      system(
        'warning',
        'Demasiados mensajes MQTT rechazados: se cuentan sin avisar durante un minuto',
        { reason: 'flood', limit_per_minute: throttle.maxPerWindow },
      )
    }
  }

  /** A batch is done: its rejections are reported in arrival order and every message acknowledged. */
  function finish(items: Item[]) {
    for (const item of items) report(item)
    acknowledge(items)
  }

  function parse(entry: Entry): Item {
    const item: Item = { ...entry, topic: entry.packet.topic, sensorId: null, readings: undefined }
    try {
      item.sensorId = sensorIdOf(item.topic, level)
      item.readings = parsePayload(entry.packet.payload as Uint8Array, item.sensorId)
    } catch (error) {
      if (error instanceof Rejection) reject(item, error.reason, error.message)
      else reject(item, 'invalid_payload', `The payload could not be read: ${message(error)}`)
    }
    return item
  }

  /** Takes what has queued up since the last batch, in arrival order, within the batch limits. */
  function takeBatch() {
    const items: Item[] = []
    let readings = 0
    while (queue.length > 0 && items.length < MAX_BATCH_MESSAGES) {
      const item = parse(queue[0]!)
      const count = item.readings?.length ?? 0
      if (items.length > 0 && readings + count > MAX_BATCH_READINGS) break
      queue.shift()
      items.push(item)
      readings += count
    }
    return items
  }

  function releaseHeld() {
    const next = held
    held = undefined
    next?.()
  }

  /** PUBACKs in arrival order, each on the connection its message came on (else the broker redelivers). */
  function acknowledge(items: Item[]) {
    for (const { packet, stream } of items) {
      if (packet.qos === 0) continue
      if (!client?.connected || client.stream !== stream) return
      stream.write(
        mqttPacket.generate(
          { cmd: 'puback', messageId: packet.messageId, reasonCode: 0 },
          { protocolVersion: 5 },
        ),
      )
    }
  }

  /** Drops messages from sensors that do not exist, or registers them under MQTT_AUTO_REGISTER. */
  async function checkSensors(items: Item[]) {
    const ids = [...new Set(items.flatMap((i) => (i.readings ? [i.sensorId!] : [])))]
    if (ids.length === 0) return
    const known = await existingIds(ctx.db.read, sensors, ids)
    for (const item of items) {
      const id = item.sensorId!
      if (!item.readings || known.has(id)) continue
      if (settings.autoRegister && id <= MAX_REGISTERED_ID) {
        const readings = items.flatMap((i) => (i.sensorId === id ? (i.readings ?? []) : []))
        await registerSensor(ctx, id, readings, item.topic)
        known.add(id)
      } else
        reject(
          item,
          'unknown_sensor',
          settings.autoRegister
            ? `Sensor ${id} does not exist and is not registered automatically: ids above ${MAX_REGISTERED_ID} would derail the id sequence.`
            : `Sensor ${id} does not exist: create it with POST /api/v1/sensors, or set MQTT_AUTO_REGISTER=true.`,
        )
    }
  }

  /**
   * Stores a batch in one createReadings call (one transaction), then acknowledges every message of
   * it. A message the service refuses spoils only itself: the batch is then stored message by message.
   */
  async function storeBatch(items: Item[]): Promise<void> {
    const stream = items[0]!.stream
    for (let attempt = 1; ; attempt++) {
      if (stopping || client?.stream !== stream) return
      try {
        await checkSensors(items)
        const valid = items.filter((i) => i.readings)
        const readings = valid.flatMap((i) => i.readings!)
        if (readings.length > 0) await createReadings(ctx, readings, readings.length > 1)
        metrics.mqtt.messages.inc({ outcome: 'stored' }, valid.length)
        metrics.mqtt.readingsStored.inc(readings.length)
        metrics.mqtt.batchMessages.observe(items.length)
        if (storeError !== null) log.info('mqtt: storing works again')
        storeError = null
        finish(items)
        return
      } catch (error) {
        const valid = items.filter((i) => i.readings)
        const refused = error instanceof AppError && error.status < 500
        const givenUp = !isTransient(error) && attempt >= MAX_UNKNOWN_FAILURES
        if ((refused || givenUp) && valid.length > 1) {
          for (const item of items) await storeBatch([item])
          return
        }
        if (refused || givenUp) {
          const reason = refused
            ? error instanceof UnknownReferenceError
              ? 'unknown_sensor'
              : 'invalid_payload'
            : 'store_error'
          const culprit = valid[0] ?? items[0]!
          reject(culprit, reason, refused ? error.message : `Storing failed: ${message(error)}`)
          if (givenUp) storeError = null
          finish(items)
          return
        }
        metrics.mqtt.storeFailures.inc()
        if (storeError === null)
          log.error('mqtt: could not store messages; retrying, they stay unacknowledged', {
            messages: items.length,
            error: message(error),
          })
        storeError = message(error)
        await pause(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (attempt - 1)))
      }
    }
  }

  function drain() {
    if (worker || stopping) return
    worker = (async () => {
      while (queue.length > 0 && !stopping) {
        const batch = takeBatch()
        if (queue.length < MAX_QUEUED) releaseHeld()
        await storeBatch(batch)
      }
    })()
      .catch((error) => log.error('mqtt: batch failed', { error: message(error) }))
      .finally(() => {
        worker = undefined
        if (queue.length > 0) drain()
      })
  }

  function onConnect(c: MqttClient, sessionPresent: boolean) {
    connected = true
    connectError = null
    reconnectDelay = RECONNECT_MIN_MS
    c.options.reconnectPeriod = RECONNECT_MIN_MS
    metrics.mqtt.connected.set(1)
    metrics.mqtt.connects.inc()
    // With a session present the broker already holds the subscription and starts redelivering at
    // once; the SUBACK below is queued behind that backlog. rh 2: retained messages are old
    // readings, so only what is published from now on is taken.
    c.subscribe(settings.topic, { qos: settings.qos, rh: 2 }, (error, granted) => {
      const code = granted?.[0]?.qos
      if (error || code === undefined || code >= 0x80) {
        subscribeError = `subscription to ${settings.topic} refused (${error ? message(error) : `reason code ${code}`})`
        log.error(`mqtt: ${subscribeError}`)
        return
      }
      subscribeError = null
      outage = false
      log.info(`mqtt: subscribed to ${settings.topic} on ${broker}`, {
        client_id: settings.clientId,
        session_present: sessionPresent,
      })
      system('info', 'Ingesta MQTT conectada', {
        broker,
        topic: settings.topic,
        client_id: settings.clientId,
        session_present: sessionPresent,
      })
    })
  }

  function onClose() {
    connected = false
    // Unacknowledged messages of a lost connection come back on the next one.
    queue.length = 0
    releaseHeld()
    metrics.mqtt.connected.set(0)
    if (stopping) return
    connectError ??= 'connection closed'
    if (!outage) {
      outage = true
      log.warn(`mqtt: broker ${broker} unreachable, retrying with backoff`, { error: connectError })
      system('warning', 'Broker MQTT no disponible: reintentando', { broker, error: connectError })
    } else log.debug('mqtt: reconnect failed', { error: connectError, next_ms: reconnectDelay })
    // mqtt.js arms its next attempt before this listener runs, so this sets the one after it.
    reconnectDelay = Math.min(RECONNECT_MAX_MS, reconnectDelay * 2)
    if (client)
      client.options.reconnectPeriod = Math.round(reconnectDelay * (0.8 + Math.random() * 0.4))
  }

  return {
    start() {
      if (!settings.url || client) return
      const c = mqtt.connect(settings.url, {
        protocolVersion: 5,
        clientId: settings.clientId,
        clean: false,
        properties: {
          sessionExpiryInterval: settings.sessionExpiry,
          receiveMaximum: RECEIVE_MAXIMUM,
        },
        resubscribe: false,
        reconnectPeriod: RECONNECT_MIN_MS,
        reconnectOnConnackError: true,
        connectTimeout: 10_000,
        keepalive: 30,
      })
      client = c
      // mqtt.js hands over one message at a time and would send its PUBACK right after this calls
      // back; DEFERRED stops that, so the message is acknowledged by its batch once stored.
      c.handleMessage = (packet, done) => {
        if (stopping) return done(DEFERRED)
        queue.push({ packet, stream: c.stream })
        if (queue.length >= MAX_QUEUED) held = () => done(DEFERRED)
        else done(DEFERRED)
        drain()
      }
      c.on('connect', (connack) => onConnect(c, connack.sessionPresent))
      c.on('error', (error) => {
        connectError = message(error)
      })
      c.on('close', onClose)
    },

    stop() {
      stopped ??= (async () => {
        const c = client
        if (!c) return
        stopping = true
        wake()
        await Promise.race([worker, Bun.sleep(STOP_GRACE_MS)])
        releaseHeld()
        await Promise.race([
          new Promise<void>((resolve) => c.end(false, {}, () => resolve())),
          Bun.sleep(STOP_GRACE_MS).then(
            () => new Promise<void>((resolve) => c.end(true, {}, () => resolve())),
          ),
        ])
        metrics.mqtt.connected.set(0)
        log.info('mqtt: disconnected')
      })()
      return stopped
    },

    status() {
      if (!settings.url)
        return {
          status: 'disabled',
          connected: false,
          broker: null,
          topic: null,
          client_id: null,
          last_error: null,
        }
      const error = connected ? (storeError ?? subscribeError) : connectError
      return {
        status: connected && error === null ? 'ok' : 'degraded',
        connected,
        broker,
        topic: settings.topic,
        client_id: settings.clientId,
        last_error: error,
      }
    },
  }
}
