// MQTT ingestion against the machine's Mosquitto: each payload form end to end to a WebSocket client,
// bad payloads (counted, warned about, never stopping the subscription), auto-registration, settings.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { ConfigError, loadConfig } from '../src/config'
import { ReportThrottle } from '../src/ingest/mqtt/throttle'
import { iso } from '../src/lib/time'
import { createSensor, metric, settle, startTestServer, type TestServer } from './helpers'
import {
  dropSession,
  publish,
  publisher,
  readingCount,
  startMqttServer,
  SYSTEM_BROKER,
  topics,
} from './mqtt-kit'

// bunfig's [test] timeout is not read (oven-sh/bun#7789); real servers, brokers and browsers need more than 5 s.
setDefaultTimeout(30_000)

const cleanup: (() => Promise<unknown>)[] = []
afterEach(async () => {
  for (const fn of cleanup.splice(0).reverse()) await fn()
})

async function setup(env: Record<string, string> = {}) {
  const topic = topics()
  const server = await startMqttServer({ MQTT_TOPIC: topic.filter, ...env })
  const pub = await publisher()
  cleanup.push(() => server.stop())
  cleanup.push(() => dropSession(SYSTEM_BROKER, server.config.mqtt.clientId))
  cleanup.push(() => pub.endAsync())
  return { server, pub, topic }
}

const ISO_Z = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$/

describe('MQTT payloads', () => {
  test('a flat payload becomes a reading stamped by the server and reaches readings:<id> exactly like a POSTed one', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()

    const before = Date.now()
    await publish(pub, topic.of(sensor), { temperatura: 23.5, humedad: 65.2 })
    const viaMqtt = await client.event((m) => m.entity_type === 'reading')
    await server.api('POST', '/api/v1/readings', { sensor_id: sensor, temperatura: 1, humedad: 2 })
    const viaRest = await client.event((m) => m.entity_type === 'reading')

    expect(viaMqtt).toMatchObject({
      type: 'entity_event',
      entity_type: 'reading',
      event_type: 'created',
      data: { sensor_id: sensor, temperatura: 23.5, humedad: 65.2 },
      metadata: { action: 'create_reading' },
    })
    expect(Object.keys(viaMqtt).sort()).toEqual(Object.keys(viaRest).sort())
    expect(Object.keys(viaMqtt.data).sort()).toEqual(Object.keys(viaRest.data).sort())
    expect(viaMqtt.metadata).toEqual({ ...viaRest.metadata })
    expect(viaMqtt.data.timestamp).toMatch(ISO_Z)
    expect(Date.parse(viaMqtt.data.timestamp)).toBeGreaterThanOrEqual(before - 1)
    const stored = await server.api('GET', `/api/v1/readings/${viaMqtt.entity_id}`)
    expect(stored.body).toEqual(viaMqtt.data)
  })

  test('a timestamped payload keeps its own time, given as ISO 8601, epoch seconds or epoch milliseconds', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()

    await publish(pub, topic.of(sensor), {
      ts: '2025-07-20T10:30:00Z',
      values: { temperatura: 21 },
    })
    await publish(pub, topic.of(sensor), { ts: 1753007400, values: { temperatura: 22 } })
    await publish(pub, topic.of(sensor), { ts: 1753007400250, values: { humedad: 40.5 } })
    const [isoEvent, seconds, millis] = await client.events(3, (m) => m.entity_type === 'reading')

    expect(isoEvent!.data).toMatchObject({ temperatura: 21, timestamp: '2025-07-20T10:30:00Z' })
    expect(seconds!.data).toMatchObject({ temperatura: 22, timestamp: iso(1753007400_000) })
    expect(millis!.data).toMatchObject({
      temperatura: null,
      humedad: 40.5,
      timestamp: '2025-07-20T10:30:00.250Z',
    })
  })

  test('an array payload is stored in one transaction, in its order and with its own timestamps', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()

    const buffered = [
      { ts: '2025-07-20T10:32:00Z', values: { temperatura: 24, humedad: 60 } },
      { ts: '2025-07-20T10:30:00Z', values: { temperatura: 22, humedad: 61 } },
      { ts: 1753007460, values: { temperatura: 23 } },
      { humedad: 70 },
    ]
    await publish(pub, topic.of(sensor), buffered)
    const events = await client.events(4, (m) => m.entity_type === 'reading')

    expect(events.map((e) => [e.data.temperatura, e.data.humedad])).toEqual([
      [24, 60],
      [22, 61],
      [23, null],
      [null, 70],
    ])
    expect(events.slice(0, 3).map((e) => e.data.timestamp)).toEqual([
      '2025-07-20T10:32:00Z',
      '2025-07-20T10:30:00Z',
      '2025-07-20T10:31:00Z',
    ])
    // One createReadings call: consecutive ids and seqs, one created_at for all.
    expect(events.map((e) => e.entity_id - events[0]!.entity_id)).toEqual([0, 1, 2, 3])
    expect(events.map((e) => e.seq - events[0]!.seq)).toEqual([0, 1, 2, 3])
    expect(new Set(events.map((e) => e.data.created_at)).size).toBe(1)
  })

  test('any named measurements, flat or under values, are stored, reach WebSocket clients and register their variables', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()

    await publish(pub, topic.of(sensor), { co2: 415, pm2_5: 12.5 })
    await publish(pub, topic.of(sensor), {
      ts: '2025-07-20T10:30:00Z',
      values: { presion: 1013.2, temperatura: 21, bateria_v: 3.71 },
    })
    const [flat, timed] = await client.events(2, (m) => m.entity_type === 'reading')
    expect(flat!.data).toMatchObject({
      sensor_id: sensor,
      temperatura: null,
      humedad: null,
      values: { co2: 415, pm2_5: 12.5 },
    })
    expect(timed!.data).toMatchObject({
      temperatura: 21,
      values: { presion: 1013.2, temperatura: 21, bateria_v: 3.71 },
      timestamp: '2025-07-20T10:30:00Z',
    })
    for (const event of [flat!, timed!])
      expect((await server.api('GET', `/api/v1/readings/${event.entity_id}`)).body).toEqual(
        event.data,
      )
    const names = (await server.api('GET', '/api/v1/variables')).body.map(
      (v: { name: string }) => v.name,
    )
    expect(names).toEqual(expect.arrayContaining(['co2', 'pm2_5', 'presion', 'bateria_v']))
  })

  test('a bad measurement name or value is rejected with the field named, and nothing of the message is stored', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()
    await publish(pub, topic.of(sensor), [
      { ts: '2025-07-20T10:30:00Z', values: { co2: 400 } },
      { ts: '2025-07-20T10:31:00Z', values: { CO2: 401 } },
    ])
    const warning = await general.event((m) => m.type === 'system_event' && m.level === 'warning')
    expect(warning.data).toMatchObject({ module: 'mqtt', reason: 'invalid_payload' })
    expect(warning.data.detail).toContain('[1].values.CO2')
    // One warning per sensor a minute: the next bad message comes from another sensor.
    const other = await createSensor(server)
    await publish(pub, topic.of(other), { co2: '400 ppm' })
    const second = await general.event(
      (m) => m.type === 'system_event' && m.level === 'warning' && m.data.sensor_id === other,
    )
    expect(second.data.detail).toContain('co2 must be a finite number')
    expect(await readingCount(server, sensor)).toBe(0)
    expect(await readingCount(server, other)).toBe(0)
  })

  test('an array with one bad item stores none of it and names the item', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()

    await publish(pub, topic.of(sensor), [
      { ts: '2025-07-20T10:30:00Z', values: { temperatura: 22 } },
      { ts: '2025-07-20T10:31:00Z', values: { temperatura: 'warm' } },
    ])
    const warning = await general.event((m) => m.type === 'system_event' && m.level === 'warning')
    expect(warning.data).toMatchObject({ module: 'mqtt', reason: 'invalid_payload' })
    expect(warning.data.detail).toContain('[1].values.temperatura')
    expect(await readingCount(server, sensor)).toBe(0)
  })
})

describe('bad MQTT payloads', () => {
  test('are counted by reason, warned about once per sensor on general, and never stop the subscription', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()

    await publish(pub, topic.of(sensor), 'not json {')
    await publish(pub, topic.of(sensor), { temperatura: 'hot' })
    await publish(pub, topic.of(sensor), { temperatura: 5000 })
    await publish(pub, topic.of(sensor), { ts: 12345, values: { temperatura: 20 } })
    await publish(pub, topic.of(999_999), { temperatura: 20 })
    await publish(pub, topic.of('kitchen'), { temperatura: 20 })
    await publish(pub, topic.of(sensor), { temperatura: 19.5 })

    const good = await general.event((m) => m.entity_type === 'reading')
    expect(good.data).toMatchObject({ sensor_id: sensor, temperatura: 19.5 })
    await settle(server, general, 'general')

    const warnings = general
      .receivedEvents()
      .filter((m) => m.type === 'system_event' && m.level === 'warning')
    expect(warnings.map((w) => [w.data.sensor_id, w.data.reason])).toEqual([
      [sensor, 'not_json'],
      [999_999, 'unknown_sensor'],
      [null, 'bad_topic'],
    ])
    expect(warnings[0]).toMatchObject({
      message: `Mensaje MQTT rechazado del sensor ${sensor}`,
      data: { module: 'mqtt', topic: topic.of(sensor), suppressed: 0 },
    })
    expect(warnings[1]!.data.detail).toContain('Sensor 999999 does not exist')

    const rejected = 'vigia_mqtt_rejected_total'
    expect(await metric(server, rejected, '{reason="not_json"}')).toBe(1)
    expect(await metric(server, rejected, '{reason="invalid_payload"}')).toBe(1)
    expect(await metric(server, rejected, '{reason="out_of_range"}')).toBe(2)
    expect(await metric(server, rejected, '{reason="unknown_sensor"}')).toBe(1)
    expect(await metric(server, rejected, '{reason="bad_topic"}')).toBe(1)
    expect(await metric(server, 'vigia_mqtt_messages_total', '{outcome="stored"}')).toBe(1)
    expect(await readingCount(server, sensor)).toBe(1)
  })

  test('a flood from many unknown sensors yields at most ten warnings a minute and one flood notice', async () => {
    const { server, pub, topic } = await setup()
    const sensor = await createSensor(server)
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()

    await Promise.all(
      Array.from({ length: 200 }, (_, i) =>
        publish(pub, topic.of(500_000 + i), { temperatura: 20 }),
      ),
    )
    await publish(pub, topic.of(sensor), { temperatura: 19.5 })
    await general.event((m) => m.entity_type === 'reading')
    await settle(server, general, 'general')

    const warnings = general.receivedEvents().filter((m) => m.level === 'warning')
    expect(warnings.filter((w) => w.data.reason === 'unknown_sensor')).toHaveLength(10)
    expect(warnings.filter((w) => w.data.reason === 'flood')).toHaveLength(1)
    expect(warnings).toHaveLength(11)
    expect(await metric(server, 'vigia_mqtt_rejected_total', '{reason="unknown_sensor"}')).toBe(200)
  })
})

describe('MQTT options', () => {
  test('with MQTT_QOS=0 messages are stored all the same', async () => {
    const { server, pub, topic } = await setup({ MQTT_QOS: '0' })
    const sensor = await createSensor(server)
    const client = await server.ws('/api/v1/ws', { channel: `readings:${sensor}` })
    await client.connected()
    await pub.publishAsync(topic.of(sensor), JSON.stringify({ humedad: 55 }), { qos: 0 })
    const event = await client.event((m) => m.entity_type === 'reading')
    expect(event.data).toMatchObject({ sensor_id: sensor, humedad: 55, temperatura: null })
  })

  test('with MQTT_AUTO_REGISTER=true a reading from an unknown sensor creates the sensor first', async () => {
    const { server, pub, topic } = await setup({ MQTT_AUTO_REGISTER: 'true' })
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    await general.connected()

    await publish(pub, topic.of(4242), { temperatura: 21.5, humedad: 50 })
    const created = await general.event((m) => m.entity_type === 'sensor')
    const reading = await general.event((m) => m.entity_type === 'reading')

    expect(created).toMatchObject({
      event_type: 'created',
      entity_id: 4242,
      data: { id: 4242, tipo: 'temperatura_humedad', modelo: 'desconocido' },
      metadata: { action: 'create_sensor' },
    })
    expect(reading.data).toMatchObject({ sensor_id: 4242, temperatura: 21.5 })
    expect(reading.seq).toBeGreaterThan(created.seq)
    expect((await server.api('GET', '/api/v1/sensors/4242')).status).toBe(200)
  })
})

describe('rejection reports', () => {
  test('a sensor is reported again after a minute, with the count of what went unreported in between', () => {
    const throttle = new ReportThrottle(60_000, 10)
    expect(throttle.admit('5', 0)).toEqual({ report: true, suppressed: 0 })
    expect(throttle.admit('5', 30_000)).toEqual({ report: false, floodStarted: false })
    expect(throttle.admit('5', 59_999)).toEqual({ report: false, floodStarted: false })
    expect(throttle.admit('6', 59_999)).toEqual({ report: true, suppressed: 0 })
    expect(throttle.admit('5', 60_000)).toEqual({ report: true, suppressed: 2 })
  })

  test('past ten reports a minute over all sensors only one flood notice goes out until the minute has passed', () => {
    const throttle = new ReportThrottle(60_000, 10)
    for (let i = 0; i < 10; i++) expect(throttle.admit(`s${i}`, i).report).toBe(true)
    expect(throttle.admit('s10', 100)).toEqual({ report: false, floodStarted: true })
    expect(throttle.admit('s11', 200)).toEqual({ report: false, floodStarted: false })
    expect(throttle.admit('s12', 60_000)).toEqual({ report: true, suppressed: 0 })
  })
})

describe('MQTT settings', () => {
  let server: TestServer | undefined
  afterEach(() => server?.stop())

  test('without MQTT_URL there is no ingestion and /health says mqtt is disabled', async () => {
    server = await startTestServer()
    const health = await server.api('GET', '/health')
    expect(health.status).toBe(200)
    expect(health.body).toMatchObject({ status: 'ok', mqtt: { status: 'disabled' } })
  })

  test('a bad MQTT variable stops the start with one line naming it', () => {
    const cases: Record<string, string> = {
      MQTT_URL: 'http://127.0.0.1:1883',
      MQTT_TOPIC: 'sensors/#',
      MQTT_QOS: '2',
      MQTT_AUTO_REGISTER: 'maybe',
      MQTT_CLIENT_ID: 'two words',
      MQTT_SESSION_EXPIRY: '0',
    }
    for (const [name, value] of Object.entries(cases)) {
      const error = (() => {
        try {
          loadConfig({ [name]: value })
        } catch (e) {
          return e
        }
      })()
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as Error).message).toContain(name)
      expect((error as Error).message).not.toContain('\n')
    }
    const defaults = loadConfig({}).mqtt
    expect(defaults).toMatchObject({ url: undefined, topic: 'sensors/+/readings', qos: 1 })
    expect(defaults.clientId).toStartWith('vigia-')
    expect(loadConfig({ MQTT_TOPIC: '$share/vigia/sensors/+/readings' }).mqtt.topic).toBe(
      '$share/vigia/sensors/+/readings',
    )
  })
})
