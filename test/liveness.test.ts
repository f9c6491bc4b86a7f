// Liveness (CONTRACT §7): unknown → online with the first reading, offline once silent past the limit
// (the sensor's, its type's, or SENSOR_OFFLINE_AFTER) with a sensor `updated` event and an `offline`
// anomaly, online again with the next reading, which resolves it; and across a restart.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sensorTypes } from '../src/db/schema'
import { sweepOffline } from '../src/modules/liveness/service'
import { expectError, expectInvalid, expectUnchanged, ISO_Z } from './assert'
import {
  createSensor,
  startWatchedServer,
  startTestServer,
  type TestServer,
  type WsClient,
} from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
beforeAll(async () => {
  // A deployment default long enough that the background sweep never fires on its own in this file,
  // except for sensors given a short limit.
  ;({ server, general } = await startWatchedServer({ SENSOR_OFFLINE_AFTER: '3600' }))
})
afterAll(() => server.stop())

const sensor = (id: number) => server.api('GET', `/api/v1/sensors/${id}`).then((r) => r.body)
const reading = (id: number, values: Record<string, number> = { co2: 400 }) =>
  server.api('POST', '/api/v1/readings', { sensor_id: id, values })
/** Events about a sensor after its creation: its changes, readings and anomalies. */
const isAbout = (id: number) => (m: Record<string, any>) =>
  m.type === 'entity_event' &&
  !(m.entity_type === 'sensor' && m.event_type === 'created') &&
  (m.entity_type === 'sensor' ? m.entity_id === id : m.data?.sensor_id === id)

describe('a sensor’s liveness', () => {
  test('starts unknown, never seen, with no limit of its own; its first reading makes it online with one sensor updated event after the reading’s', async () => {
    const id = await createSensor(server)
    expect(await sensor(id)).toMatchObject({
      status: 'unknown',
      last_seen: null,
      offline_after: null,
    })
    const res = await reading(id)
    const [created, updated] = await general.events(2, isAbout(id))
    expect(updated).toMatchObject({
      entity_type: 'sensor',
      event_type: 'updated',
      entity_id: id,
      data: { id, status: 'online', last_seen: res.body.created_at },
      metadata: { action: 'update_sensor', liveness: 'online' },
    })
    expect(created).toMatchObject({ entity_type: 'reading', event_type: 'created' })
    // Later readings move last_seen without an event of the sensor's own.
    const again = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: id, values: { co2: 1 } },
      { sensor_id: id, values: { co2: 2 } },
    ])
    const more = await general.events(2, isAbout(id))
    expect(more.map((e) => e.entity_type)).toEqual(['reading', 'reading'])
    expect((await sensor(id)).last_seen).toBe(again.body[1].created_at)
    expect((await sensor(id)).last_seen).toMatch(ISO_Z)
  })

  test('silent past its limit it goes offline (sensor updated + offline anomaly); its next reading brings it back and resolves the anomaly', async () => {
    const id = await createSensor(server, { offline_after: 1 })
    const first = await reading(id)
    await general.events(2, isAbout(id))
    const offline = await general.event((m) => isAbout(id)(m) && m.entity_type === 'sensor', 10_000)
    expect(offline).toMatchObject({
      event_type: 'updated',
      data: { status: 'offline', last_seen: first.body.created_at },
      metadata: { liveness: 'offline' },
    })
    const anomaly = await general.event(isAbout(id))
    expect(anomaly).toMatchObject({
      entity_type: 'anomaly',
      event_type: 'anomaly_detected',
      data: {
        sensor_id: id,
        reading_id: null,
        variable: 'last_seen',
        kind: 'offline',
        rule: 'liveness',
        status: 'open',
        expected_max: 1,
      },
    })
    expect(anomaly.data.value).toBeGreaterThanOrEqual(1)
    expect(anomaly.seq).toBe(offline.seq + 1)
    expect(await sensor(id)).toMatchObject({ status: 'offline' })
    expect((await server.api('GET', `/api/v1/sensors/${id}/latest`)).body.status).toBe('offline')

    await reading(id)
    const [created, online, resolved] = await general.events(3, isAbout(id))
    expect(online).toMatchObject({
      entity_type: 'sensor',
      data: { status: 'online' },
      metadata: { liveness: 'online' },
    })
    expect(resolved).toMatchObject({
      entity_type: 'anomaly',
      event_type: 'updated',
      entity_id: anomaly.entity_id,
      data: { status: 'resolved', kind: 'offline' },
    })
    expect(resolved.data.resolved_at).toMatch(ISO_Z)
    expect(created.entity_type).toBe('reading')
    const list = await server.api('GET', `/api/v1/anomalies?sensor_id=${id}&rule=liveness`)
    expect(list.body.map((a: { status: string }) => a.status)).toEqual(['resolved'])
  })

  test('one batch from several sensors back after an outage brings each online and resolves each one’s offline anomaly', async () => {
    const ids = [await createSensor(server), await createSensor(server)]
    for (const id of ids) await reading(id)
    await sweepOffline(server.ctx, Date.now() + 2 * 3600_000)
    const offline = await Promise.all(
      ids.map((id) => general.event((m) => isAbout(id)(m) && m.entity_type === 'anomaly')),
    )
    const batch = ids.map((id) => ({ sensor_id: id, values: { co2: 410 } }))
    expect((await server.api('POST', '/api/v1/readings/batch', batch)).status).toBe(201)
    const resolved = await general.events(
      2,
      (m) => m.entity_type === 'anomaly' && offline.some((o) => o.entity_id === m.entity_id),
    )
    expect(resolved.map((m) => m.entity_id)).toEqual(offline.map((o) => o.entity_id))
    for (const [i, id] of ids.entries()) {
      expect(await sensor(id)).toMatchObject({ status: 'online' })
      const [stored] = (await server.api('GET', `/api/v1/anomalies?sensor_id=${id}&rule=liveness`))
        .body
      expect(stored).toMatchObject({ status: 'resolved', kind: 'offline' })
      expect(stored.resolved_at).toMatch(ISO_Z)
      expect(resolved[i]).toMatchObject({ event_type: 'updated', data: stored })
    }
  })

  test('the limit is the sensor’s own, else its type’s, else SENSOR_OFFLINE_AFTER; 0 means never', async () => {
    expect(
      (await server.api('PUT', '/api/v1/sensor-types/boya/liveness', { offline_after: 600 }))
        .status,
    ).toBe(200)
    const typed = await createSensor(server, { tipo: 'boya' })
    const own = await createSensor(server, { tipo: 'boya', offline_after: 60 })
    const global = await createSensor(server, { tipo: 'otro' })
    const never = await createSensor(server, { tipo: 'boya', offline_after: 0 })
    const unknown = await createSensor(server, { tipo: 'boya' })
    const ids = [typed, own, global, never]
    for (const id of ids) await reading(id)
    const seen = Math.max(
      ...(await Promise.all(ids.map(sensor))).map((s) => Date.parse(s.last_seen)),
    )
    const statuses = async () =>
      Promise.all([...ids, unknown].map(async (id) => (await sensor(id)).status))

    // Swept at chosen instants (the sweep looks at every sensor; only these are checked): just before
    // each limit nothing changes, just after it exactly the sensors it applies to go offline.
    const at = async (ms: number) => {
      await sweepOffline(server.ctx, seen + ms)
      return statuses()
    }
    expect(await at(59_000)).toEqual(['online', 'online', 'online', 'online', 'unknown'])
    expect(await at(61_000)).toEqual(['online', 'offline', 'online', 'online', 'unknown'])
    expect(await at(599_000)).toEqual(['online', 'offline', 'online', 'online', 'unknown'])
    expect(await at(601_000)).toEqual(['offline', 'offline', 'online', 'online', 'unknown'])
    expect(await at(3_599_000)).toEqual(['offline', 'offline', 'online', 'online', 'unknown'])
    expect(await at(3_601_000)).toEqual(['offline', 'offline', 'offline', 'online', 'unknown'])
    expect(await at(10 * 365 * 86_400_000)).toEqual([
      'offline',
      'offline',
      'offline',
      'online',
      'unknown',
    ])
    // Once offline, a sensor is not turned offline again: one anomaly each.
    await at(20 * 365 * 86_400_000)
    for (const id of [typed, own, global]) {
      const list = await server.api('GET', `/api/v1/anomalies?sensor_id=${id}&rule=liveness`)
      expect(list.body).toHaveLength(1)
    }
  })

  test('offline_after on a sensor is checked: an integer of seconds from 0 to a year, or null', async () => {
    const id = await createSensor(server)
    const url = `/api/v1/sensors/${id}`
    for (const value of [-1, 1.5, '1m', true, 365 * 86_400 + 1])
      expectInvalid(await server.api('PATCH', url, { offline_after: value }), 'offline_after')
    expect((await server.api('PATCH', url, { offline_after: 30 })).body.offline_after).toBe(30)
    expect((await server.api('PATCH', url, { offline_after: null })).body.offline_after).toBeNull()
    // PUT is the whole sensor: left out, it is cleared back to null.
    await server.api('PATCH', url, { offline_after: 30 })
    const put = await server.api('PUT', url, { tipo: 'temperatura', modelo: 'DHT22' })
    expect(put.body).toMatchObject({ offline_after: null, status: 'unknown' })
  })
})

describe('/api/v1/sensor-types/:tipo/liveness', () => {
  test('PUT sets, GET reads, the list shows, DELETE removes a type’s limit', async () => {
    const url = '/api/v1/sensor-types/estacion_meteo/liveness'
    const put = await server.api('PUT', url, { offline_after: 900 })
    expect(put.body).toEqual({
      tipo: 'estacion_meteo',
      offline_after: 900,
      created_at: expect.stringMatching(ISO_Z),
      updated_at: expect.stringMatching(ISO_Z),
    })
    expect((await server.api('GET', url)).body).toEqual(put.body)
    expect((await server.api('GET', '/api/v1/sensor-types/liveness')).body).toContainEqual(put.body)
    expect((await server.api('DELETE', url)).status).toBe(204)
    expectError(await server.api('GET', url), 404, 'not_found')
    expectError(await server.api('DELETE', url), 404, 'not_found')
  })

  test('a bad body is a 422 naming the field and changes nothing', async () => {
    const url = '/api/v1/sensor-types/faro/liveness'
    await server.api('PUT', url, { offline_after: 120 })
    await expectUnchanged(server, sensorTypes, async () => {
      for (const body of [
        {},
        { offline_after: -5 },
        { offline_after: 'x' },
        { offline_after: null },
      ])
        expectInvalid(await server.api('PUT', url, body), 'offline_after')
      for (const body of ['11', '[]', '"x"', 'null'])
        expect((await server.api('PUT', url, body)).status).toBe(422)
      expectError(
        await server.api('PUT', url, 'offline_after=1', { 'content-type': 'text/plain' }),
        400,
      )
    })
    expect((await server.api('GET', url)).body.offline_after).toBe(120)
  })
})

describe('liveness across a restart', () => {
  test('a sensor that went silent while the server was down is offline once it is back', async () => {
    const first = await startTestServer()
    const id = await createSensor(first, { offline_after: 1 })
    expect(
      (await first.api('POST', '/api/v1/readings', { sensor_id: id, values: { co2: 1 } })).status,
    ).toBe(201)
    const dir = first.dir
    await first.stop(true)
    // The silence happens while no server runs.
    await Bun.sleep(1500)
    const second = await startTestServer({}, { dir })
    try {
      const client = await second.ws('/api/v1/ws', { channel: `sensors:${id}` })
      await client.connected()
      const offline = await client.event((m) => m.entity_type === 'sensor', 10_000)
      expect(offline.data).toMatchObject({ id, status: 'offline' })
      const anomaly = await client.event((m) => m.entity_type === 'anomaly')
      expect(anomaly.data).toMatchObject({ kind: 'offline', status: 'open' })
      expect(anomaly.data.value).toBeGreaterThanOrEqual(1.5)
      await client.close()
    } finally {
      await second.stop()
    }
  })
})
