// MQTT ingestion: a persistent QoS 1 subscription whose messages are stored as readings through the
// readings service, each acknowledged to the broker only after its transaction has committed.
import mqtt, { type IPublishPacket, type MqttClient } from 'mqtt'
import { eq } from 'drizzle-orm'
import type { AppContext } from '../../context'
import { sensors } from '../../db/schema'
import { insertOne } from '../../lib/crud'
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
  /** Finishes the message being stored (acknowledging it), leaves the rest to the broker, disconnects. */
  stop(): Promise<void>
  status(): MqttStatus
}

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

/** A sensor created on first contact: its tipo says which measures it sent. */
async function registerSensor(
  ctx: IngestContext,
  id: number,
  readings: ReadingCreate[],
  topic: string,
) {
  const has = (key: 'temperatura' | 'humedad') => readings.some((r) => r[key] != null)
  const tipo =
    has('temperatura') && has('humedad')
      ? 'temperatura_humedad'
      : has('humedad')
        ? 'humedad'
        : 'temperatura'
  await ctx.emitter.transact(async (tx, emit) => {
    const [found] = await tx.select({ id: sensors.id }).from(sensors).where(eq(sensors.id, id))
    if (found) return
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

export function createMqttIngest(ctx: IngestContext): MqttIngest {
  const { config, log, metrics } = ctx
  const settings = config.mqtt
  const level = sensorLevel(settings.topic)
  const broker = settings.url ? safeUrl(settings.url) : null
  const throttle = new ReportThrottle()

  let client: MqttClient | undefined
  let subscribed = false
  let stopping = false
  /** Bumped on every lost connection: an ack must go back on the connection its message came on. */
  let session = 0
  let outage = false
  let connectError: string | null = null
  let storeError: string | null = null
  let reconnectDelay = RECONNECT_MIN_MS
  let inflight: Promise<unknown> = Promise.resolve()
  let wake = () => {}

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

  function reject(topic: string, sensorId: number | null, reason: RejectReason, detail: string) {
    metrics.mqttMessages.inc({ outcome: 'rejected' })
    metrics.mqttRejected.inc({ reason })
    const key = sensorId === null ? `topic:${topic.slice(0, 200)}` : String(sensorId)
    const verdict = throttle.admit(key, Date.now())
    if (verdict.report) {
      const fields = { topic, sensor_id: sensorId, reason, detail, suppressed: verdict.suppressed }
      log.warn(`mqtt: rejected a message on ${topic}: ${detail}`, fields)
      system(
        'warning',
        sensorId === null
          ? `Mensaje MQTT rechazado en ${topic.slice(0, 200)}`
          : `Mensaje MQTT rechazado del sensor ${sensorId}`,
        fields,
      )
    } else if (verdict.floodStarted) {
      const text = `mqtt: more than ${throttle.maxPerWindow} rejected messages in a minute; further ones are only counted (vigia_mqtt_rejected_total) for a minute`
      log.warn(text)
      system(
        'warning',
        'Demasiados mensajes MQTT rechazados: se cuentan sin avisar durante un minuto',
        {
          reason: 'flood',
          limit_per_minute: throttle.maxPerWindow,
        },
      )
    }
  }

  async function store(sensorId: number, readings: ReadingCreate[], topic: string) {
    try {
      return await createReadings(ctx, readings, readings.length > 1)
    } catch (error) {
      if (!(error instanceof UnknownReferenceError) || !settings.autoRegister) throw error
      await registerSensor(ctx, sensorId, readings, topic)
      return createReadings(ctx, readings, readings.length > 1)
    }
  }

  /** Stores one message; resolves true when it may be acknowledged (stored, or rejected for good). */
  async function handle(packet: IPublishPacket, onSession: number): Promise<boolean> {
    const topic = packet.topic
    let sensorId: number | null = null
    let readings: ReadingCreate[]
    try {
      sensorId = sensorIdOf(topic, level)
      readings = parsePayload(packet.payload as Uint8Array, sensorId)
    } catch (error) {
      if (!(error instanceof Rejection)) throw error
      reject(topic, sensorId, error.reason, error.message)
      return true
    }
    for (let attempt = 1; ; attempt++) {
      if (stopping || onSession !== session) return false
      try {
        const stored = await store(sensorId, readings, topic)
        metrics.mqttMessages.inc({ outcome: 'stored' })
        metrics.mqttReadings.inc(stored.length)
        if (storeError !== null) log.info('mqtt: storing works again')
        storeError = null
        return onSession === session
      } catch (error) {
        if (error instanceof AppError && error.status < 500) {
          if (error instanceof UnknownReferenceError)
            reject(
              topic,
              sensorId,
              'unknown_sensor',
              `${error.message} Or set MQTT_AUTO_REGISTER=true.`,
            )
          else reject(topic, sensorId, 'invalid_payload', error.message)
          return true
        }
        metrics.mqttStoreFailures.inc()
        if (storeError === null)
          log.error('mqtt: could not store a message; retrying, it stays unacknowledged', {
            topic,
            error: message(error),
          })
        storeError = message(error)
        if (!isTransient(error) && attempt >= MAX_UNKNOWN_FAILURES) {
          reject(topic, sensorId, 'store_error', `Storing failed ${attempt} times: ${storeError}`)
          storeError = null
          return true
        }
        await pause(Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** (attempt - 1)))
      }
    }
  }

  function subscribe(c: MqttClient, sessionPresent: boolean) {
    // rh 2: retained messages are old readings, not new ones; take only what is published from now on.
    c.subscribe(settings.topic, { qos: settings.qos, rh: 2 }, (error, granted) => {
      const code = granted?.[0]?.qos
      if (error || code === undefined || code >= 0x80) {
        connectError = `subscription to ${settings.topic} refused (${error ? message(error) : `reason code ${code}`})`
        log.error(`mqtt: ${connectError}`)
        return
      }
      subscribed = true
      connectError = null
      reconnectDelay = RECONNECT_MIN_MS
      c.options.reconnectPeriod = RECONNECT_MIN_MS
      metrics.mqttConnected.set(1)
      metrics.mqttConnects.inc()
      log.info(`mqtt: subscribed to ${settings.topic} on ${broker}`, {
        client_id: settings.clientId,
        session_present: sessionPresent,
      })
      outage = false
      system('info', 'Ingesta MQTT conectada', {
        broker,
        topic: settings.topic,
        client_id: settings.clientId,
        session_present: sessionPresent,
      })
    })
  }

  function onClose() {
    session++
    subscribed = false
    metrics.mqttConnected.set(0)
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
        properties: { sessionExpiryInterval: settings.sessionExpiry },
        resubscribe: false,
        reconnectPeriod: RECONNECT_MIN_MS,
        reconnectOnConnackError: true,
        connectTimeout: 10_000,
        keepalive: 30,
      })
      client = c
      // mqtt.js hands over one message at a time and sends its PUBACK when this calls back without
      // an error, so messages are stored in arrival order and acknowledged only once stored.
      c.handleMessage = (packet, done) => {
        const onSession = session
        const work = handle(packet, onSession).then(
          (ack) => (ack && c.connected ? done() : done(new Error('not stored'))),
          (error) => {
            log.error('mqtt: message handling failed', { error: message(error) })
            done(error instanceof Error ? error : new Error(String(error)))
          },
        )
        inflight = work
      }
      c.on('connect', (connack) => {
        connectError = null
        subscribe(c, connack.sessionPresent)
      })
      c.on('error', (error) => {
        connectError = message(error)
      })
      c.on('close', onClose)
    },

    async stop() {
      const c = client
      if (!c) return
      stopping = true
      wake()
      await Promise.race([inflight, Bun.sleep(STOP_GRACE_MS)])
      await Promise.race([
        new Promise<void>((resolve) => c.end(false, {}, () => resolve())),
        Bun.sleep(STOP_GRACE_MS).then(() => new Promise<void>((r) => c.end(true, {}, () => r()))),
      ])
      metrics.mqttConnected.set(0)
      log.info('mqtt: disconnected')
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
      const healthy = subscribed && storeError === null
      return {
        status: healthy ? 'ok' : 'degraded',
        connected: subscribed,
        broker,
        topic: settings.topic,
        client_id: settings.clientId,
        last_error: storeError ?? connectError,
      }
    },
  }
}
