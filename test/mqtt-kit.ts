// MQTT test kit: the machine's Mosquitto (127.0.0.1:1883), private Mosquitto instances that a test may
// stop and restart, publishers, and a server whose MQTT ingestion is known to be subscribed.
import { chmodSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import mqtt, { type MqttClient } from 'mqtt'
import { startTestServer, tempDir, until, type TestServer, type WsClient } from './helpers'

export const SYSTEM_BROKER = 'mqtt://127.0.0.1:1883'

export const uid = (prefix: string) => `${prefix}-${crypto.randomUUID().slice(0, 8)}`

/** A topic filter of its own per test, so parallel runs never see each other's messages. */
export function topics() {
  const root = uid('vigia-test')
  return {
    filter: `${root}/+/readings`,
    of: (sensor: number | string) => `${root}/${sensor}/readings`,
  }
}

export function publisher(url = SYSTEM_BROKER, options: mqtt.IClientOptions = {}) {
  return mqtt.connectAsync(url, { protocolVersion: 5, reconnectPeriod: 100, ...options })
}

export async function publish(client: MqttClient, topic: string, payload: unknown) {
  await client.publishAsync(
    topic,
    typeof payload === 'string' ? payload : JSON.stringify(payload),
    {
      qos: 1,
    },
  )
}

/** Ends a persistent session on the broker so tests leave nothing behind. */
export async function dropSession(url: string, clientId: string) {
  const client = await mqtt.connectAsync(url, {
    protocolVersion: 5,
    clientId,
    clean: true,
    properties: { sessionExpiryInterval: 0 },
    reconnectPeriod: 0,
  })
  await client.endAsync()
}

async function portOpen(port: number) {
  try {
    const socket = await Bun.connect({ hostname: '127.0.0.1', port, socket: { data() {} } })
    socket.end()
    return true
  } catch {
    return false
  }
}

export function freePort() {
  const listener = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const { port } = listener
  listener.stop(true)
  return port
}

/**
 * A Mosquitto of the test's own, on its own port with its own config and persistence directory,
 * so a test can stop and restart it without touching the machine's broker.
 */
export class PrivateBroker {
  private proc: ReturnType<typeof Bun.spawn> | undefined
  private constructor(
    readonly port: number,
    readonly dir: string,
    private readonly conf: string,
  ) {}

  static create(extra: string[] = []) {
    const dir = tempDir('vigia-mosquitto-')
    // Mosquitto started as root drops to its own user, which must still write its persistence file.
    chmodSync(dir, 0o777)
    const port = freePort()
    const conf = join(dir, 'mosquitto.conf')
    writeFileSync(
      conf,
      [
        `listener ${port} 127.0.0.1`,
        'allow_anonymous true',
        'persistence true',
        `persistence_location ${dir}/`,
        `log_dest file ${join(dir, 'mosquitto.log')}`,
        ...extra,
        '',
      ].join('\n'),
    )
    return new PrivateBroker(port, dir, conf)
  }

  get url() {
    return `mqtt://127.0.0.1:${this.port}`
  }

  async start() {
    this.proc = Bun.spawn(['mosquitto', '-c', this.conf], { stdout: 'ignore', stderr: 'ignore' })
    await until(() => portOpen(this.port), `mosquitto on port ${this.port}`)
    return this
  }

  /** SIGTERM, as a service manager stops it: Mosquitto saves its sessions and queues first. */
  async stop() {
    const proc = this.proc
    this.proc = undefined
    if (!proc) return
    proc.kill('SIGTERM')
    await proc.exited
  }

  async dispose() {
    await this.stop()
    rmSync(this.dir, { recursive: true, force: true })
  }
}

/** Waits for the `Ingesta MQTT conectada` system event with a seq above `afterSeq`. */
export async function mqttReady(server: TestServer, afterSeq = 0, timeout = 15_000) {
  const general = await server.ws('/api/v1/ws', { channel: 'general', since: afterSeq })
  await general.event((m) => m.message === 'Ingesta MQTT conectada', timeout)
  await general.close()
}

/** A server ingesting `filter` from `url`, returned once its subscription is in place. */
export async function startMqttServer(env: Record<string, string> & { MQTT_TOPIC: string }) {
  const server = await startTestServer({
    MQTT_URL: SYSTEM_BROKER,
    MQTT_CLIENT_ID: uid('vigia-test'),
    MQTT_SESSION_EXPIRY: '300',
    ...env,
  })
  await mqttReady(server)
  return server
}

export async function readingCount(server: TestServer, sensorId: number) {
  const res = await server.api('GET', `/api/v1/readings?sensor_id=${sensorId}&limit=1`)
  return Number(res.headers.get('x-total-count'))
}

export async function allReadings(server: TestServer, sensorId: number) {
  const out: any[] = []
  for (let offset = 0; ; offset += 1000) {
    const res = await server.api(
      'GET',
      `/api/v1/readings?sensor_id=${sensorId}&order=asc&limit=1000&offset=${offset}`,
    )
    out.push(...res.body)
    if (res.body.length < 1000) return out
  }
}

export const readingEvents = (client: WsClient) =>
  client.receivedEvents().filter((m) => m.entity_type === 'reading' && m.event_type === 'created')
