// MQTT delivery guarantees against real Mosquitto brokers: bursts, broker and server restarts, storage
// failures. Tests that stop a broker use a private Mosquitto so the machine's one is never touched.
import { Database as SQLite } from 'bun:sqlite'
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import {
  createSensor,
  metric,
  settle,
  startTestServer,
  tempDir,
  until,
  type TestServer,
} from './helpers'
import {
  allReadings,
  dropSession,
  mqttReady,
  PrivateBroker,
  publish,
  publisher,
  readingCount,
  readingEvents,
  startMqttServer,
  SYSTEM_BROKER,
  topics,
  uid,
} from './mqtt-kit'

// bunfig's [test] timeout is not read (oven-sh/bun#7789); real servers, brokers and browsers need more than 5 s.
setDefaultTimeout(30_000)

const cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined)
})

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)

/** Settings for a server that can be stopped and started again on the same database and session. */
function restartable(url: string) {
  const dir = tempDir()
  cleanup.push(async () => rmSync(dir, { recursive: true, force: true }))
  const topic = topics()
  const env = {
    DATABASE_URL: `sqlite:${join(dir, 'vigia.db')}`,
    MQTT_URL: url,
    MQTT_TOPIC: topic.filter,
    MQTT_CLIENT_ID: uid('vigia-test'),
    MQTT_SESSION_EXPIRY: '300',
  }
  cleanup.push(() => dropSession(url, env.MQTT_CLIENT_ID))
  return { env, topic, dbPath: join(dir, 'vigia.db') }
}

/** Starts the server again and waits for its own subscription (events above the old run's last seq). */
async function restart(env: Record<string, string>, previous: TestServer) {
  const lastSeq = previous.ctx.realtime.publisher.lastSeq
  const server = await startTestServer(env)
  cleanup.push(() => server.stop())
  await mqttReady(server, lastSeq)
  return { server, lastSeq }
}

const health = async (server: TestServer) => (await server.api('GET', '/health')).body

/** A server that made a sensor and stopped (its MQTT session stays with the broker), and a publisher. */
async function serverGone() {
  const { env, topic } = restartable(SYSTEM_BROKER)
  const first = await startMqttServer(env)
  cleanup.push(() => first.stop())
  const sensor = await createSensor(first)
  await first.stop()
  const pub = await publisher()
  cleanup.push(() => pub.endAsync())
  return { env, topic, first, sensor, pub }
}

describe('MQTT delivery', () => {
  test('10,000 readings published in a burst are all stored, in order, and each emitted once', async () => {
    // The machine's broker queues at most 1,000 messages per client (Mosquitto's default) and drops
    // the rest of a burst before the server can take them; this broker is sized for the burst.
    const broker = await PrivateBroker.create(['max_queued_messages 20000']).start()
    cleanup.push(() => broker.dispose())
    const topic = topics()
    const server = await startMqttServer({ MQTT_URL: broker.url, MQTT_TOPIC: topic.filter })
    cleanup.push(() => server.stop())
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()
    const pub = await publisher(broker.url)
    cleanup.push(() => pub.endAsync())

    const N = 10_000
    await Promise.all(
      range(0, N).map((i) => publish(pub, topic.of(sensor), { temperatura: i / 100 })),
    )
    await client.event(
      (m) => m.entity_type === 'reading' && m.data.temperatura === (N - 1) / 100,
      120_000,
    )
    await settle(server, client, `readings:${sensor}`)

    const events = readingEvents(client)
    expect(events).toHaveLength(N)
    expect(new Set(events.map((e) => e.entity_id)).size).toBe(N)
    expect(events.map((e) => e.data.temperatura)).toEqual(range(0, N).map((i) => i / 100))
    expect(await readingCount(server, sensor)).toBe(N)
    expect(await metric(server, 'vigia_mqtt_readings_stored_total')).toBe(N)
  }, 180_000)

  test('a broker restart mid-stream loses no reading, and /health shows mqtt degraded until the server is back', async () => {
    const broker = await PrivateBroker.create().start()
    cleanup.push(() => broker.dispose())
    const topic = topics()
    const server = await startMqttServer({ MQTT_URL: broker.url, MQTT_TOPIC: topic.filter })
    cleanup.push(() => server.stop())
    const sensor = await createSensor(server)
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()
    // A persistent publisher: what it sent while the broker was down goes out when it is back.
    const pub = await publisher(broker.url, {
      clientId: uid('vigia-pub'),
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    })
    cleanup.push(() => pub.endAsync(true))
    const send = (from: number, to: number) =>
      Promise.all(range(from, to).map((i) => publish(pub, topic.of(sensor), { temperatura: i })))

    await send(0, 300)
    await general.event((m) => m.entity_type === 'reading' && m.data.temperatura === 20)
    await broker.stop()
    await general.event((m) => m.message === 'Broker MQTT no disponible: reintentando')
    const down = await server.api('GET', '/health')
    expect(down.status).toBe(200)
    expect(down.body).toMatchObject({
      status: 'degraded',
      mqtt: { status: 'degraded', connected: false },
    })
    expect(down.body.mqtt.last_error).toBeString()

    const whileDown = send(300, 400)
    await broker.start()
    await general.event((m) => m.message === 'Ingesta MQTT conectada', 40_000)
    await whileDown
    await send(400, 500)
    await general.event((m) => m.entity_type === 'reading' && m.data.temperatura === 499, 30_000)
    await settle(server, general, 'general')

    // QoS 1 is at least once: a reading stored just as the link dropped may come twice; none is lost.
    const stored = await allReadings(server, sensor)
    expect(new Set(stored.map((r) => r.temperatura))).toEqual(new Set(range(0, 500)))
    expect(readingEvents(general).map((e) => e.entity_id)).toEqual(stored.map((r) => r.id))
    expect(await health(server)).toMatchObject({ status: 'ok', mqtt: { status: 'ok' } })
    expect(await metric(server, 'vigia_mqtt_connects_total')).toBe(2)
  }, 120_000)

  test('readings published while the server is down are delivered, in order, when it comes back', async () => {
    const { env, topic, first, sensor, pub } = await serverGone()
    const base = Date.parse('2025-07-20T10:00:00Z')
    for (const i of range(0, 50))
      await publish(pub, topic.of(sensor), { ts: base + i * 60_000, values: { temperatura: i } })

    const { server, lastSeq } = await restart(env, first)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}`, since: lastSeq })
    const events = await client.events(50, (m) => m.entity_type === 'reading')
    expect(events.map((e) => e.data.temperatura)).toEqual(range(0, 50))
    expect(events[49]!.data.timestamp).toBe('2025-07-20T10:49:00Z')
    await settle(server, client, `readings:${sensor}`)
    expect(readingEvents(client)).toHaveLength(50)
    expect(await readingCount(server, sensor)).toBe(50)
  }, 60_000)

  test('a backlog is stored in batches where a message the service refuses spoils only itself', async () => {
    const { env, topic, first, sensor, pub } = await serverGone()
    const backlog = [
      [sensor, { temperatura: 1 }],
      [sensor, {}],
      [sensor, [{ humedad: 50 }, { ts: '2025-07-20T10:30:00Z', values: {} }]],
      [777_777, { temperatura: 3 }],
      [sensor, { temperatura: 2 }],
    ] as const
    for (const [id, payload] of backlog) await publish(pub, topic.of(id), payload)

    const { server, lastSeq } = await restart(env, first)
    const general = await server.ws('/api/v1/ws', { channel: 'general', since: lastSeq })
    await general.event((m) => m.entity_type === 'reading' && m.data.temperatura === 2)
    await settle(server, general, 'general')

    expect(readingEvents(general).map((e) => e.data.temperatura)).toEqual([1, 2])
    const warnings = general.receivedEvents().filter((m) => m.level === 'warning')
    expect(warnings.map((w) => [w.data.sensor_id, w.data.reason])).toEqual([
      [sensor, 'invalid_payload'],
      [777_777, 'unknown_sensor'],
    ])
    expect(warnings[0]!.data.detail).toContain('has no measurement')
    expect(warnings[0]!.data.suppressed).toBe(0)
    expect(await metric(server, 'vigia_mqtt_rejected_total', '{reason="invalid_payload"}')).toBe(2)
    expect(await metric(server, 'vigia_mqtt_messages_total', '{outcome="stored"}')).toBe(2)
  }, 60_000)

  test('messages taken but not stored when the server stops are redelivered to the next start, and none is stored twice', async () => {
    const broker = await PrivateBroker.create(['max_queued_messages 20000']).start()
    cleanup.push(() => broker.dispose())
    const { env, topic, dbPath } = restartable(broker.url)
    const first = await startMqttServer(env)
    cleanup.push(() => first.stop())
    const sensor = await createSensor(first)
    const before = await first.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await before.connected()
    const pub = await publisher(broker.url)
    cleanup.push(() => pub.endAsync())
    const send = (from: number, to: number) =>
      Promise.all(
        range(from, to).map((i) => publish(pub, topic.of(sensor), { temperatura: i / 10 })),
      )

    const N = 3000
    await send(0, 100)
    await before.event((m) => m.entity_type === 'reading' && m.data.temperatura === 9.9)
    // Another process's write transaction holds the rest back: the server takes messages (up to its
    // Receive Maximum) that it cannot store, and stops with them in hand.
    const lock = new SQLite(dbPath)
    cleanup.push(async () => lock.close())
    lock.run('BEGIN IMMEDIATE')
    await send(100, N)
    await until(
      async () => (await health(first)).mqtt.status === 'degraded',
      'a failed store',
      30_000,
    )
    await first.ctx.mqtt.stop()
    lock.run('ROLLBACK')
    await first.stop()
    expect(readingEvents(before)).toHaveLength(100)

    const { server, lastSeq } = await restart(env, first)
    const after = await server.ws('/api/v1/ws', { channel: `readings:${sensor}`, since: lastSeq })
    await after.event(
      (m) => m.entity_type === 'reading' && m.data.temperatura === (N - 1) / 10,
      60_000,
    )
    const stored = await allReadings(server, sensor)
    expect(stored.map((r) => r.temperatura)).toEqual(range(0, N).map((i) => i / 10))
  }, 120_000)

  test('a message that cannot be stored stays unacknowledged: retried while /health says why, redelivered after a stop', async () => {
    const { env, topic, dbPath } = restartable(SYSTEM_BROKER)
    const first = await startMqttServer(env)
    cleanup.push(() => first.stop())
    const sensor = await createSensor(first)
    const client = await first.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()
    const pub = await publisher()
    cleanup.push(() => pub.endAsync())
    // Another process's write transaction: the server's writes get SQLITE_BUSY until it ends.
    const lock = new SQLite(dbPath)
    cleanup.push(async () => lock.close())
    const degraded = async () => (await health(first)).mqtt.status === 'degraded'

    lock.run('BEGIN IMMEDIATE')
    await publish(pub, topic.of(sensor), { temperatura: 1 })
    await until(degraded, 'a failed store', 30_000)
    expect((await health(first)).mqtt.last_error).toContain('locked')
    lock.run('ROLLBACK')
    const retried = await client.event((m) => m.entity_type === 'reading', 15_000)
    expect(retried.data.temperatura).toBe(1)
    expect(await health(first)).toMatchObject({ status: 'ok', mqtt: { last_error: null } })
    expect(await metric(first, 'vigia_mqtt_store_failures_total')).toBeGreaterThanOrEqual(1)

    lock.run('BEGIN IMMEDIATE')
    await publish(pub, topic.of(sensor), { temperatura: 2 })
    await until(degraded, 'a second failed store', 30_000)
    await first.ctx.mqtt.stop()
    lock.run('ROLLBACK')
    await first.stop()

    const { server, lastSeq } = await restart(env, first)
    const again = await server.ws('/api/v1/ws', { channel: `readings:${sensor}`, since: lastSeq })
    const redelivered = await again.event((m) => m.entity_type === 'reading')
    expect(redelivered.data.temperatura).toBe(2)
    expect((await allReadings(server, sensor)).map((r) => r.temperatura)).toEqual([1, 2])
  }, 120_000)

  test('with the broker unreachable at start the server serves, /health reports mqtt degraded, and ingestion begins once the broker is up', async () => {
    const broker = PrivateBroker.create()
    cleanup.push(() => broker.dispose())
    const topic = topics()
    const server = await startTestServer({
      MQTT_URL: broker.url,
      MQTT_TOPIC: topic.filter,
      MQTT_CLIENT_ID: uid('vigia-test'),
    })
    cleanup.push(() => server.stop())
    const general = await server.ws('/api/v1/ws', { channel: 'general', since: 0 })
    const warning = await general.event(
      (m) => m.message === 'Broker MQTT no disponible: reintentando',
    )
    expect(warning).toMatchObject({
      level: 'warning',
      data: { module: 'mqtt', broker: broker.url },
    })

    const res = await server.api('GET', '/health')
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      status: 'degraded',
      database: { status: 'ok' },
      mqtt: { status: 'degraded', connected: false, broker: broker.url },
    })
    const sensor = await createSensor(server)

    await broker.start()
    await general.event((m) => m.message === 'Ingesta MQTT conectada', 40_000)
    const pub = await publisher(broker.url)
    cleanup.push(() => pub.endAsync())
    await publish(pub, topic.of(sensor), { temperatura: 18 })
    const reading = await general.event((m) => m.entity_type === 'reading')
    expect(reading.data).toMatchObject({ sensor_id: sensor, temperatura: 18 })
    expect(await health(server)).toMatchObject({ status: 'ok', mqtt: { connected: true } })
  }, 90_000)
})
