// The fleet at a glance (CONTRACT §7): GET /latest and /sensors/:id/latest answered from the last-value
// store, kept right under concurrent writers and corrections, and `snapshot=latest` on the WebSocket,
// consistent with seq while writers run (no event lost or doubled between snapshot and stream).
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { inChannels, readAfter } from '../src/realtime/event-log'
import { expectError, expectInvalid, ISO_Z } from './assert'
import { adminToken, startAuthServer } from './auth-kit'
import { createSensor, settle, startTestServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
const T0 = Date.UTC(2025, 6, 20, 10)
const post = (body: unknown) => server.api('POST', '/api/v1/readings', body)

type Reading = {
  id: number
  sensor_id: number
  values: Record<string, number>
  timestamp: string
  created_at: string
}
type Latest = Record<string, { value: number; timestamp: string }>

/** The newest value per variable of these readings: greatest timestamp, then greatest id. */
function newest(readings: Reading[]): Map<number, Latest> {
  const best = new Map<string, Reading>()
  for (const r of readings)
    for (const variable of Object.keys(r.values)) {
      const key = `${r.sensor_id}:${variable}`
      const current = best.get(key)
      const t = Date.parse(r.timestamp)
      if (
        !current ||
        t > Date.parse(current.timestamp) ||
        (t === Date.parse(current.timestamp) && r.id > current.id)
      )
        best.set(key, r)
    }
  const out = new Map<number, Latest>()
  for (const [key, r] of [...best].sort(([a], [b]) => a.localeCompare(b))) {
    const [sensor, variable] = key.split(':') as [string, string]
    const values = out.get(Number(sensor)) ?? {}
    values[variable] = { value: r.values[variable]!, timestamp: r.timestamp }
    out.set(Number(sensor), values)
  }
  return out
}

async function allReadings(sensor?: number): Promise<Reading[]> {
  const out: Reading[] = []
  for (let offset = 0; ; offset += 1000) {
    const q = `limit=1000&offset=${offset}&order=asc${sensor ? `&sensor_id=${sensor}` : ''}`
    const page = (await server.api('GET', `/api/v1/readings?${q}`)).body as Reading[]
    out.push(...page)
    if (page.length < 1000) return out
  }
}

describe('GET /api/v1/sensors/:id/latest', () => {
  test('a sensor with no reading is unknown, never seen, with no values', async () => {
    const sensor = await createSensor(server)
    expect((await server.api('GET', `/api/v1/sensors/${sensor}/latest`)).body).toEqual({
      sensor_id: sensor,
      status: 'unknown',
      last_seen: null,
      values: {},
    })
  })

  test('answers the newest value of every variable in the contract’s shape, newest by measurement time', async () => {
    const sensor = await createSensor(server)
    const a = await post({
      sensor_id: sensor,
      temperatura: 20,
      values: { co2: 400 },
      timestamp: iso(T0 + 60_000),
    })
    // Older measurements stored later do not replace newer ones; a new variable joins.
    await post({ sensor_id: sensor, values: { co2: 999, pm10: 7 }, timestamp: iso(T0) })
    // The same instant twice: the later reading wins.
    await post({ sensor_id: sensor, temperatura: 21, timestamp: iso(T0 + 60_000) })
    const last = await post({ sensor_id: sensor, humedad: 55, timestamp: iso(T0 + 30_000) })
    const res = await server.api('GET', `/api/v1/sensors/${sensor}/latest`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      sensor_id: sensor,
      status: 'online',
      last_seen: last.body.created_at,
      values: {
        co2: { value: 400, timestamp: a.body.timestamp },
        humedad: { value: 55, timestamp: iso(T0 + 30_000) },
        pm10: { value: 7, timestamp: iso(T0) },
        temperatura: { value: 21, timestamp: iso(T0 + 60_000) },
      },
    })
    expect(res.body.last_seen).toMatch(ISO_Z)
    expect(Object.keys(res.body)).toEqual(['sensor_id', 'status', 'last_seen', 'values'])
  })

  test('follows corrections and deletions of the newest reading back to the one before', async () => {
    const sensor = await createSensor(server)
    const other = await createSensor(server)
    await post({ sensor_id: sensor, values: { co2: 400 }, timestamp: iso(T0) })
    const top = await post({ sensor_id: sensor, values: { co2: 500 }, timestamp: iso(T0 + 1000) })
    const latest = async (id: number) =>
      (await server.api('GET', `/api/v1/sensors/${id}/latest`)).body.values
    expect(await latest(sensor)).toEqual({ co2: { value: 500, timestamp: iso(T0 + 1000) } })
    await server.api('PATCH', `/api/v1/readings/${top.body.id}`, { values: { co2: 450 } })
    expect(await latest(sensor)).toEqual({ co2: { value: 450, timestamp: iso(T0 + 1000) } })
    await server.api('PATCH', `/api/v1/readings/${top.body.id}`, { timestamp: iso(T0 - 1000) })
    expect(await latest(sensor)).toEqual({ co2: { value: 400, timestamp: iso(T0) } })
    await server.api('PATCH', `/api/v1/readings/${top.body.id}`, { sensor_id: other })
    expect(await latest(other)).toEqual({ co2: { value: 450, timestamp: iso(T0 - 1000) } })
    await server.api('DELETE', `/api/v1/readings/${top.body.id}`)
    expect(await latest(other)).toEqual({})
    expect(await latest(sensor)).toEqual({ co2: { value: 400, timestamp: iso(T0) } })
  })

  test('keeps variables named like object properties (constructor, valueof) newest by time, like any other', async () => {
    const sensor = await createSensor(server)
    const batch = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: sensor, values: { constructor: 1, valueof: 2 }, timestamp: iso(T0 + 1000) },
      { sensor_id: sensor, values: { constructor: 3 }, timestamp: iso(T0) },
    ])
    expect(batch.status).toBe(201)
    await post({ sensor_id: sensor, values: { valueof: 9 }, timestamp: iso(T0 - 1000) })
    await post({ sensor_id: sensor, values: { constructor: 4 }, timestamp: iso(T0 + 2000) })
    const res = await server.api('GET', `/api/v1/sensors/${sensor}/latest`)
    expect(res.body.values).toEqual({
      constructor: { value: 4, timestamp: iso(T0 + 2000) },
      valueof: { value: 2, timestamp: iso(T0 + 1000) },
    })
  })

  test('an unknown sensor is a 404, a bad id a 422', async () => {
    expectError(await server.api('GET', '/api/v1/sensors/987654/latest'), 404, 'not_found')
    expectInvalid(await server.api('GET', '/api/v1/sensors/abc/latest'), 'id')
    expectInvalid(await server.api('GET', '/api/v1/sensors/0/latest'), 'id')
  })
})

describe('GET /api/v1/latest', () => {
  test('lists every sensor by id, and filters by location_id and tipo', async () => {
    const location = (await server.api('POST', '/api/v1/locations', { nombre: 'Nave 2' })).body.id
    const inside = await createSensor(server, { tipo: 'aire_nave', location_id: location })
    const elsewhere = await createSensor(server, { tipo: 'aire_nave' })
    await post({ sensor_id: inside, values: { co2: 410 }, timestamp: iso(T0) })
    const all = (await server.api('GET', '/api/v1/latest')).body
    const sensors = (await server.api('GET', '/api/v1/sensors?limit=1000')).body
    expect(all.map((s: { sensor_id: number }) => s.sensor_id)).toEqual(
      sensors.map((s: { id: number }) => s.id),
    )
    expect((await server.api('GET', `/api/v1/latest?location_id=${location}`)).body).toEqual([
      {
        sensor_id: inside,
        status: 'online',
        last_seen: expect.stringMatching(ISO_Z),
        values: { co2: { value: 410, timestamp: iso(T0) } },
      },
    ])
    const byType = (await server.api('GET', '/api/v1/latest?tipo=aire_nave')).body
    expect(byType.map((s: { sensor_id: number }) => s.sensor_id)).toEqual([inside, elsewhere])
    expect(
      (await server.api('GET', `/api/v1/latest?tipo=aire_nave&location_id=${location}`)).body,
    ).toHaveLength(1)
    expect((await server.api('GET', '/api/v1/latest?tipo=ninguno')).body).toEqual([])
    for (const [query, field] of [
      ['location_id=0', 'location_id'],
      ['location_id=x', 'location_id'],
      [`tipo=${'x'.repeat(101)}`, 'tipo'],
    ])
      expectInvalid(await server.api('GET', `/api/v1/latest?${query}`), field!)
  })

  test('under concurrent writers, single and batch, ends equal to the newest reading of each sensor variable', async () => {
    const sensors = await Promise.all([1, 2, 3, 4].map(() => createSensor(server)))
    const names = ['co2', 'temperatura', 'presion', 'ruido']
    let seed = 7
    const random = () => (seed = (seed * 48271) % 2147483647) / 2147483647
    const body = () => {
      const values: Record<string, number> = {}
      for (const name of names) if (random() < 0.6) values[name] = Math.round(random() * 1000) / 10
      if (Object.keys(values).length === 0) values.co2 = 1
      return {
        sensor_id: sensors[Math.floor(random() * sensors.length)]!,
        values,
        // Few distinct instants, so ties and out-of-order arrivals are common.
        timestamp: iso(T0 + Math.floor(random() * 20) * 1000),
      }
    }
    const writers = Array.from({ length: 8 }, async (_, w) => {
      for (let i = 0; i < 15; i++) {
        const res =
          w % 2 === 0
            ? await post(body())
            : await server.api(
                'POST',
                '/api/v1/readings/batch',
                Array.from({ length: 10 }, () => body()),
              )
        expect(res.status).toBe(201)
      }
    })
    await Promise.all(writers)
    const expected = newest(
      (await Promise.all(sensors.map((s) => allReadings(s)))).flat() as Reading[],
    )
    for (const sensor of sensors) {
      const res = await server.api('GET', `/api/v1/sensors/${sensor}/latest`)
      expect(res.body.values).toEqual(expected.get(sensor) ?? {})
    }
  })
})

/** Every retained event, in seq order (the log holds exactly the frames that went out). */
async function logged() {
  return (await readAfter(server.ctx.db.read, 0, 1e9)).map((row) => ({
    seq: row.seq,
    channels: row.channels,
    message: JSON.parse(row.payload),
  }))
}

/** What a snapshot as of `seq` must hold, worked out from the event log alone. */
async function expectedSnapshot(seq: number, sensorIds?: number[]) {
  const log = (await logged()).filter((e) => e.seq <= seq)
  const readings = new Map<number, Reading>()
  const status = new Map<number, string>()
  const lastSeen = new Map<number, string>()
  for (const { message } of log) {
    if (message.type !== 'entity_event') continue
    if (message.entity_type === 'sensor')
      if (message.event_type === 'deleted') status.delete(message.entity_id)
      else status.set(message.entity_id, message.data.status)
    if (message.entity_type === 'reading' && message.event_type === 'deleted')
      readings.delete(message.entity_id)
    if (message.entity_type === 'reading' && message.event_type === 'updated')
      readings.set(message.entity_id, message.data)
    if (message.entity_type === 'reading' && message.event_type === 'created') {
      readings.set(message.entity_id, message.data)
      // last_seen moves once per batch, to the batch's created_at, with no event of its own.
      const seen = lastSeen.get(message.data.sensor_id)
      if (!seen || Date.parse(message.data.created_at) > Date.parse(seen))
        lastSeen.set(message.data.sensor_id, message.data.created_at)
    }
  }
  const values = newest([...readings.values()])
  return [...status.keys()]
    .filter((id) => !sensorIds || sensorIds.includes(id))
    .sort((a, b) => a - b)
    .map((id) => ({
      sensor_id: id,
      status: status.get(id),
      last_seen: lastSeen.get(id) ?? null,
      values: values.get(id) ?? {},
    }))
}

describe('snapshot=latest on the WebSocket', () => {
  test('sends, right after the connection message, the latest values of every sensor with the seq they are as of', async () => {
    const sensor = await createSensor(server)
    await post({ sensor_id: sensor, values: { co2: 420 }, timestamp: iso(T0) })
    const client = await server.ws('/api/v1/ws', { channel: 'general', snapshot: 'latest' })
    const [greeting, snapshot] = [await client.next(), await client.next()]
    expect(greeting).toMatchObject({ type: 'connection', status: 'connected', channel: 'general' })
    expect(snapshot).toEqual({ type: 'snapshot', seq: expect.any(Number), data: expect.any(Array) })
    expect(snapshot.seq).toBeGreaterThanOrEqual(greeting.last_seq)
    expect(snapshot.data).toEqual(await expectedSnapshot(snapshot.seq))
    expect(snapshot.data.find((s: { sensor_id: number }) => s.sensor_id === sensor)).toEqual({
      sensor_id: sensor,
      status: 'online',
      last_seen: expect.stringMatching(ISO_Z),
      values: { co2: { value: 420, timestamp: iso(T0) } },
    })
    await client.close()
  })

  test('covers the sensors its channels carry readings of: all, one, or none', async () => {
    const a = await createSensor(server)
    const b = await createSensor(server)
    await post({ sensor_id: a, values: { co2: 1 } })
    await post({ sensor_id: b, values: { co2: 2 } })
    const snapshotOf = async (channel: string) => {
      const client = await server.ws('/api/v1/ws', { channel, snapshot: 'latest' })
      const snapshot = await client.next((m) => m.type === 'snapshot')
      await client.close()
      return snapshot.data.map((s: { sensor_id: number }) => s.sensor_id)
    }
    const every = (await server.api('GET', '/api/v1/sensors?limit=1000')).body.map(
      (s: { id: number }) => s.id,
    )
    for (const channel of ['general', 'sensors', 'readings', 'readings,anomalies'])
      expect(await snapshotOf(channel)).toEqual(every)
    expect(await snapshotOf(`sensors:${b}`)).toEqual([b])
    expect(await snapshotOf(`readings:${a},sensors:${b},anomalies:${a}`)).toEqual([a, b])
    for (const channel of [
      'anomalies',
      'predictions',
      'locations',
      `anomalies:${a}`,
      'locations:1',
    ])
      expect(await snapshotOf(channel)).toEqual([])
  })

  test('with writers running, each subscriber gets the snapshot as of N and then every event after N, once, in order', async () => {
    const sensors = await Promise.all([1, 2, 3].map(() => createSensor(server)))
    let running = true
    let n = 0
    const writers = sensors.map(async (sensor, w) => {
      while (running) {
        n += 1
        const body = { sensor_id: sensor, values: { co2: n, [`v${w}`]: n % 7 } }
        const res =
          n % 3 === 0
            ? await server.api('POST', '/api/v1/readings/batch', [body, { ...body, humedad: 50 }])
            : await post(body)
        expect(res.status).toBe(201)
      }
    })
    const channels = ['general', 'readings', `readings:${sensors[0]}`, `sensors:${sensors[1]}`]
    const subscribers: { channel: string; client: WsClient }[] = []
    for (let i = 0; i < 8; i++) {
      const channel = channels[i % channels.length]!
      subscribers.push({
        channel,
        client: await server.ws('/api/v1/ws', { channel, snapshot: 'latest' }),
      })
      // Let the writers move on between subscribers.
      const before = n
      while (n < before + 3) await Bun.sleep(5)
    }
    running = false
    await Promise.all(writers)
    for (const { channel, client } of subscribers)
      await settle(server, client, channel.split(',')[0]!)

    const log = await logged()
    for (const { channel, client } of subscribers) {
      const messages = client.messages
      expect(messages[0]).toMatchObject({ type: 'connection', status: 'connected' })
      expect(messages[1]!.type).toBe('snapshot')
      const { seq, data } = messages[1]!
      const covered =
        channel === `readings:${sensors[0]}`
          ? [sensors[0]!]
          : channel === `sensors:${sensors[1]}`
            ? [sensors[1]!]
            : undefined
      expect(data).toEqual(await expectedSnapshot(seq, covered))
      const got = messages
        .slice(2)
        .filter((m) => m.type === 'entity_event' || m.type === 'system_event')
      const wanted = log
        .filter((e) => e.seq > seq && inChannels(e.channels, [channel]))
        .map((e) => e.message)
        .slice(0, got.length)
      expect(got.length).toBeGreaterThan(0)
      expect(got).toEqual(wanted)
      // Nothing in between is missing: the last one is the marker, and all the log has up to it came.
      const marker = got.at(-1)!
      expect(marker.message).toStartWith('marker-')
      expect(
        log.filter((e) => e.seq > seq && e.seq <= marker.seq && inChannels(e.channels, [channel])),
      ).toHaveLength(got.length)
      await client.close()
    }
  }, 60_000)

  test('snapshot must be latest, and cannot be combined with since: 4400', async () => {
    const queries: Record<string, string>[] = [
      { snapshot: 'all' },
      { snapshot: '' },
      { snapshot: 'latest', since: '0' },
    ]
    for (const query of queries) {
      const client = await server.ws('/api/v1/ws', { channel: 'general', ...query })
      expect((await client.closed).code).toBe(4400)
    }
  })
})

describe('snapshot=latest on /api/v1/ws/secure', () => {
  test('works with a token as on the open endpoint', async () => {
    const secured = await startAuthServer()
    try {
      const token = await adminToken(secured)
      const sensor = (
        await secured.api(
          'POST',
          '/api/v1/sensors',
          { tipo: 't', modelo: 'm' },
          { authorization: `Bearer ${token}` },
        )
      ).body.id
      await secured.api(
        'POST',
        '/api/v1/readings',
        { sensor_id: sensor, values: { lux: 300 }, timestamp: iso(T0) },
        { authorization: `Bearer ${token}` },
      )
      const client = await secured.ws('/api/v1/ws/secure', {
        channel: `sensors:${sensor}`,
        token,
        snapshot: 'latest',
      })
      await client.connected()
      const snapshot = await client.next((m) => m.type === 'snapshot')
      expect(snapshot.data).toEqual([
        {
          sensor_id: sensor,
          status: 'online',
          last_seen: expect.stringMatching(ISO_Z),
          values: { lux: { value: 300, timestamp: iso(T0) } },
        },
      ])
      await client.close()
    } finally {
      await secured.stop()
    }
  })
})
