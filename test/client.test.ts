// The client library (src/client) against real servers: typed handlers, actions, reconnect with backoff,
// resume with since, gap reports, Eden Treaty REST calls, and token refresh where the server has login.
import { afterAll, afterEach, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import {
  backoffDelay,
  createApi,
  createClient,
  httpBase,
  loginTokens,
  RealtimeClient,
  tokenExpiry,
  websocketUrl,
  type ConnectedInfo,
  type Disconnect,
  type EntityEvent,
  type Gap,
  type RealtimeEvents,
  type ServerEvent,
} from '../src/client'
import { record, restartableServer, when, type RestartableServer } from './clients-kit'
import { startTestServer, type TestServer } from './helpers'

// bunfig's [test] timeout is not read (oven-sh/bun#7789); real servers, brokers and browsers need more than 5 s.
setDefaultTimeout(30_000)

const FAST = { initialMs: 20, maxMs: 250 }

const clients: RealtimeClient[] = []
function track(client: RealtimeClient) {
  clients.push(client)
  return client
}
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
})

describe('client helpers', () => {
  test('backoff grows exponentially up to its cap and jitter only ever shortens a delay', () => {
    const options = { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 }
    expect([0, 1, 2, 3, 4, 5].map((n) => backoffDelay(n, options, () => 0))).toEqual([
      100, 200, 400, 800, 1000, 1000,
    ])
    expect(backoffDelay(2, options, () => 1)).toBe(200)
    for (let i = 0; i < 200; i++) {
      const delay = backoffDelay(3, options)
      expect(delay).toBeGreaterThanOrEqual(400)
      expect(delay).toBeLessThanOrEqual(800)
    }
  })

  test('token expiry is read from the JWT exp claim and a token without one has none', () => {
    const payload = btoa(JSON.stringify({ sub: 'ana', exp: 1_900_000_000 }))
      .replace(/=+$/, '')
      .replace(/\+/g, '-')
      .replace(/\//g, '_')
    expect(tokenExpiry(`eyJhbGciOiJIUzI1NiJ9.${payload}.sig`)).toBe(1_900_000_000_000)
    expect(tokenExpiry('not-a-jwt')).toBeUndefined()
    expect(tokenExpiry('a.%%%.c')).toBeUndefined()
  })

  test('server URLs are turned into the WebSocket endpoint and back into the REST base', () => {
    expect(websocketUrl('http://localhost:8000').toString()).toBe('ws://localhost:8000/api/v1/ws')
    expect(websocketUrl('https://x.org/', true).toString()).toBe('wss://x.org/api/v1/ws/secure')
    expect(websocketUrl('ws://h:1/api/v1/ws/secure').toString()).toBe('ws://h:1/api/v1/ws/secure')
    expect(httpBase('ws://localhost:8000/api/v1/ws')).toBe('http://localhost:8000')
    expect(httpBase('wss://x.org/vigia/api/v1/ws/secure')).toBe('https://x.org/vigia')
  })
})

describe('the realtime client on a running server', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
  })
  afterAll(() => server.stop())

  test('typed handlers get the events of their entity and event type, with the entity as data', async () => {
    const client = track(
      new RealtimeClient({ url: server.base, channels: ['sensors', 'readings'] }),
    )
    const greeting = await client.connect()
    expect(greeting).toMatchObject({ type: 'connection', status: 'connected' })
    expect(client.lastSeq).toBe(greeting.last_seq!)

    const createdSensors: EntityEvent<'sensor', 'created'>[] = []
    const readings: EntityEvent<'reading'>[] = []
    const updates: EntityEvent<'sensor'>[] = []
    client.onEntity('sensor', 'created', (e) => createdSensors.push(e))
    client.onEntity('sensor', 'updated', (e) => updates.push(e))
    client.onEntity('reading', (e) => readings.push(e))

    const reading = when(
      client,
      'event',
      (e) => e.type === 'entity_event' && e.entity_type === 'reading',
    )
    // Its first reading makes the sensor online: one sensor updated event, after the reading's.
    const online = when(
      client,
      'event',
      (e) => e.type === 'entity_event' && e.entity_type === 'sensor' && e.event_type === 'updated',
    )
    const sensor = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
    })
    await server.api('POST', '/api/v1/readings', {
      sensor_id: sensor.body.id,
      temperatura: 23.5,
      humedad: 65.2,
      timestamp: '2025-07-20T10:30:00Z',
    })
    await reading
    await online

    expect(createdSensors).toHaveLength(1)
    expect(createdSensors[0]!.data.modelo).toBe('DHT22')
    expect(createdSensors[0]!.entity_id).toBe(sensor.body.id)
    expect(readings).toHaveLength(1)
    expect(readings[0]!.data).toMatchObject({ sensor_id: sensor.body.id, temperatura: 23.5 })
    expect(updates).toHaveLength(1)
    expect(updates[0]!.data).toMatchObject({ id: sensor.body.id, status: 'online' })
    expect(updates[0]!.seq).toBe(readings[0]!.seq + 1)
    expect(client.lastSeq).toBe(updates[0]!.seq)
  })

  test('subscribe and unsubscribe are acknowledged, a bad channel is refused and the connection stays open', async () => {
    const client = track(new RealtimeClient({ url: server.base, channels: ['sensors'] }))
    await client.connect()
    const sensor = await server.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'SHT31' })

    await client.subscribe(`anomalies:${sensor.body.id}`)
    await client.unsubscribe('sensors')
    expect([...client.channels]).toEqual([`anomalies:${sensor.body.id}`])
    await expect(client.subscribe('nowhere')).rejects.toThrow(/Unknown channel "nowhere"/)
    expect(client.channels.has('nowhere')).toBe(false)
    expect(client.state).toBe('open')
    expect(await client.ping()).toBeGreaterThanOrEqual(0)

    const seen = record(client)
    const detected = when(
      client,
      'event',
      (e) => e.type === 'entity_event' && e.entity_type === 'anomaly',
    )
    await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'not-on-my-channels',
    })
    const anomaly = await server.api('POST', '/api/v1/anomalies', {
      sensor_id: sensor.body.id,
      variable: 'humedad',
      value: 99,
    })
    await detected
    expect(
      seen.map((e) => e.type === 'entity_event' && [e.entity_type, e.event_type, e.entity_id]),
    ).toEqual([['anomaly', 'anomaly_detected', anomaly.body.id]])
  })

  test('a channel the server does not know ends connect() without retrying', async () => {
    const client = track(
      new RealtimeClient({ url: server.base, channels: ['bogus'], reconnect: FAST }),
    )
    const closes: Disconnect[] = []
    client.on('disconnected', (d) => closes.push(d))
    await expect(client.connect()).rejects.toMatchObject({ code: 4400 })
    expect(closes).toEqual([expect.objectContaining({ code: 4400, willReconnect: false })])
    expect(client.state).toBe('closed')
  })

  test('REST calls through Eden Treaty are typed by the server routes and reach it', async () => {
    const { api, realtime } = createClient({ url: server.base, channels: ['anomalies'] })
    track(realtime)
    await realtime.connect()
    const created = await api.api.v1.sensors.post({ tipo: 'temperatura', modelo: 'DS18B20' })
    expect(created.status).toBe(201)
    const sensorId = created.data!.id
    const fetched = await api.api.v1.sensors({ id: sensorId }).get()
    expect(fetched.data).toMatchObject({ id: sensorId, modelo: 'DS18B20' })
    expect(typeof fetched.data!.created_at).toBe('string')
    // Readings with any measurements, and the fleet's latest values, typed too.
    const stored = await api.api.v1.readings.post({ sensor_id: sensorId, values: { co2: 415 } })
    expect(stored.data!.values.co2).toBe(415)
    const latest = await api.api.v1.sensors({ id: sensorId }).latest.get()
    const co2: number | undefined = latest.data?.values.co2?.value
    expect(co2).toBe(415)
    const fleet = await api.api.v1.latest.get({ query: { tipo: 'temperatura' } })
    expect(fleet.data!.map((s) => s.sensor_id)).toContain(sensorId)
    const units = await api.api.v1.variables.get()
    expect(units.data!.find((v) => v.name === 'temperatura')?.unit).toBe('°C')

    const detected = when(
      realtime,
      'event',
      (e) => e.type === 'entity_event' && e.event_type === 'anomaly_detected',
    )
    const anomaly = await api.api.v1.anomalies.post({
      sensor_id: sensorId,
      variable: 'temperatura',
      value: 80,
      severity: 'critical',
    })
    await detected
    const updated = when(
      realtime,
      'event',
      (e) => e.type === 'entity_event' && e.event_type === 'updated',
    )
    const patched = await api.api.v1
      .anomalies({ id: anomaly.data!.id })
      .patch({ status: 'acknowledged' })
    expect(patched.data?.status).toBe('acknowledged')
    expect(await updated).toMatchObject({
      entity_type: 'anomaly',
      data: { status: 'acknowledged' },
    })

    const bad = await createApi(server.base).api.v1.readings.post({
      sensor_id: 999_999,
      temperatura: 20,
    })
    expect(bad.data).toBeNull()
    expect(bad.status).toBe(422)
    expect(bad.error).toMatchObject({ value: { error: expect.any(String), field: 'sensor_id' } })
  })
})

describe('reconnect and resume', () => {
  let server: RestartableServer
  afterEach(() => server?.cleanup())

  test('after a restart on the same port and database the client resumes with since and gets every missed event once, in order, on every channel it joined', async () => {
    server = await restartableServer()
    const client = track(
      new RealtimeClient({ url: server.base, channels: ['sensors'], reconnect: FAST }),
    )
    const events = record(client)
    const connects: ConnectedInfo[] = []
    const drops: Disconnect[] = []
    client.on('connected', (c) => connects.push(c))
    client.on('disconnected', (d) => drops.push(d))
    await client.connect()
    await client.subscribe('locations')
    const live = when(client, 'event', (e) => e.type === 'entity_event')
    await server.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: 'live' })
    expect(await live).toMatchObject({ entity_type: 'sensor', data: { modelo: 'live' } })

    const dropped = when(client, 'disconnected')
    await server.stop()
    expect(await dropped).toMatchObject({ code: 1001, willReconnect: true })

    // Made while the client is away: another instance on the same database.
    const aside = await server.startAside()
    const missedSensor = await aside.api('POST', '/api/v1/sensors', {
      tipo: 'humedad',
      modelo: 'gap',
    })
    const missedPlace = await aside.api('POST', '/api/v1/locations', { nombre: 'Invernadero' })
    await aside.stop()

    const back = when(client, 'connected')
    await server.start()
    const resumed = await back
    expect(resumed.resumed).toBe(true)
    expect(resumed.message.recovered).toBe(true)
    expect(resumed.message.channels?.sort()).toEqual(['locations', 'sensors'])

    // A marker proves the replay is over: events arrive in seq order.
    const marker = when(
      client,
      'event',
      (e) => e.type === 'system_event' && e.message === 'after-resume',
    )
    await server.api('POST', '/api/v1/ws/test-event?channel=sensors&message=after-resume')
    await marker

    const about = (type: string, id: number) =>
      events.filter(
        (e) => e.type === 'entity_event' && e.entity_type === type && e.entity_id === id,
      )
    expect(about('sensor', missedSensor.body.id)).toHaveLength(1)
    expect(about('location', missedPlace.body.id)).toHaveLength(1)
    const seqs = events.map((e) => e.seq)
    expect(seqs).toEqual([...new Set(seqs)].sort((a, b) => a - b))
    expect(client.stats).toMatchObject({ reconnects: 1, gaps: 0, duplicates: 0 })
    expect(drops.length).toBeGreaterThanOrEqual(1)
    for (const d of drops) expect(d.delayMs).toBeLessThanOrEqual(FAST.maxMs)
    expect(connects.map((c) => c.resumed)).toEqual([false, true])
  }, 30_000)

  test('a gap that cannot be recovered is reported: history pruned past since, then another history', async () => {
    server = await restartableServer({ EVENT_RETENTION_COUNT: '2' })
    const client = track(
      new RealtimeClient({ url: server.base, channels: ['sensors'], reconnect: FAST }),
    )
    const events = record(client)
    const gaps: Gap[] = []
    client.on('gap', (g) => gaps.push(g))
    await client.connect()
    const firstEpoch = client.epoch

    const dropped = when(client, 'disconnected')
    await server.stop()
    await dropped
    const seen = client.lastSeq!
    const aside = await server.startAside()
    for (let i = 0; i < 5; i++)
      await aside.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: `lost-${i}` })
    expect(await aside.ctx.realtime.prune()).toBeGreaterThan(0)
    await aside.stop()

    let back = when(client, 'connected')
    await server.start()
    expect((await back).message.recovered).toBe(false)
    expect(gaps[0]).toMatchObject({ since: seen, reason: 'history_pruned', epoch: firstEpoch })
    expect(gaps[0]!.oldestSeq).toBeGreaterThan(seen + 1)

    // Another database on the same port: a new history whose seq starts over.
    // What history still had is replayed; what it had dropped is not.
    const marker = when(
      client,
      'event',
      (e) => e.type === 'system_event' && e.message === 'after-gap',
    )
    await server.api('POST', '/api/v1/ws/test-event?channel=sensors&message=after-gap')
    await marker
    const models = events.flatMap((e) =>
      e.type === 'entity_event' && e.entity_type === 'sensor' ? [e.data.modelo] : [],
    )
    // Retention 2: of the five, the last two are still there.
    expect(models).toEqual(['lost-3', 'lost-4'])
    const oldSeq = client.lastSeq!
    const dropAgain = when(client, 'disconnected')
    back = when(client, 'connected')
    await server.startFresh()
    await dropAgain
    const fresh = await back
    expect(gaps[1]).toMatchObject({ reason: 'new_history', epoch: firstEpoch })
    expect(gaps[1]!.serverEpoch).toBe(fresh.message.epoch!)
    expect(client.epoch).toBe(fresh.message.epoch!)
    expect(client.lastSeq).toBe(fresh.message.last_seq!)
    expect(client.stats.gaps).toBe(2)

    // Lower seqs of the new history are not taken for duplicates.
    const created = when(
      client,
      'event',
      (e) => e.type === 'entity_event' && e.entity_type === 'sensor',
    )
    const sensor = await server.api('POST', '/api/v1/sensors', {
      tipo: 'humedad',
      modelo: 'new-history',
    })
    expect(await created).toMatchObject({
      entity_id: sensor.body.id,
      data: { modelo: 'new-history' },
    })
    expect(events.at(-1)!.seq).toBeLessThan(oldSeq)
  }, 30_000)
})

/** An unsigned JWT-shaped token that expires in `seconds` (only its `exp` matters to the client). */
function expiringToken(seconds: number, id: number) {
  const part = (value: object) => btoa(JSON.stringify(value)).replace(/=+$/, '')
  return `${part({ alg: 'none' })}.${part({ sub: `t${id}`, exp: Math.floor(Date.now() / 1000) + seconds })}.x`
}

describe('token refresh', () => {
  test('where the server refuses {"action":"refresh"} (a socket opened without a token), the client reconnects with the fresh token and resumes with since', async () => {
    const server = await startTestServer()
    try {
      const issued: string[] = []
      const client = track(
        new RealtimeClient({
          url: server.base,
          secure: false,
          channels: ['general'],
          getToken: () => {
            issued.push(expiringToken(3, issued.length))
            return issued.at(-1)!
          },
          refreshAheadMs: 1500,
          reconnect: FAST,
        }),
      )
      const refused = when(client, 'serverError')
      const drop = when(client, 'disconnected')
      const back = when(client, 'connected', (c) => c.resumed)
      const refreshed = when(client, 'tokenRefreshed')
      await client.connect()
      expect((await refused).code).toBe('refresh_not_supported')
      expect(await drop).toMatchObject({ code: 4000, delayMs: 0, willReconnect: true })
      const resumed = await back
      expect(resumed.message.recovered).toBe(true)
      expect(await refreshed).toEqual({ token: issued[1]!, reconnected: true })
      expect(client.currentToken).toBe(issued[1]!)
      expect(issued).toHaveLength(2)
    } finally {
      await server.stop()
    }
  }, 30_000)

  test('the client hands over a fresh token before the old one expires and the connection outlives it', async () => {
    const password = 'client-test-password-1'
    const server = await startTestServer({
      ADMIN_USERNAME: 'admin',
      ADMIN_PASSWORD: password,
      JWT_EXPIRES_IN: '4',
    })
    try {
      let issued = 0
      const getToken = async () => {
        issued += 1
        return loginTokens(server.base, 'admin', password)()
      }
      const client = track(
        new RealtimeClient({
          url: server.base,
          channels: ['sensors'],
          getToken,
          refreshAheadMs: 2000,
          reconnect: FAST,
        }),
      )
      const drops: Disconnect[] = []
      client.on('disconnected', (d) => drops.push(d))
      await client.connect()
      const firstExp = tokenExpiry(client.currentToken!)!
      await when(client, 'tokenRefreshed')
      expect(issued).toBe(2)
      await Bun.sleep(Math.max(0, firstExp - Date.now()) + 1500)
      const created = when(client, 'event', (e) => e.type === 'entity_event')
      const sensor = await server.api(
        'POST',
        '/api/v1/sensors',
        { tipo: 'temperatura', modelo: 'after-exp' },
        { authorization: `Bearer ${client.currentToken}` },
      )
      expect(await created).toMatchObject({ entity_id: sensor.body.id })
      expect(drops.filter((d) => d.code === 4401)).toEqual([])
    } finally {
      await server.stop()
    }
  }, 30_000)
})

describe('a server with AUTH_MODE=required', () => {
  test('REST reads need no token; the stats and writes go with the client token, and a socket without one is refused with 4401', async () => {
    const password = 'client-test-password-1'
    const server = await startTestServer({ AUTH_MODE: 'required', ADMIN_PASSWORD: password })
    try {
      const anonymous = createApi(server.base)
      expect((await anonymous.api.v1.sensors.get()).status).toBe(200)
      expect((await anonymous.api.v1.ws.stats.get()).status).toBe(401)
      const refusedWrite = await anonymous.api.v1.sensors.post({ tipo: 't', modelo: 'm' })
      expect(refusedWrite.status).toBe(401)
      const refused = track(new RealtimeClient({ url: server.base, channels: ['sensors'] }))
      await expect(refused.connect()).rejects.toMatchObject({ code: 4401 })

      const { api, realtime } = createClient({
        url: server.base,
        channels: ['sensors'],
        getToken: loginTokens(server.base, 'admin', password),
      })
      track(realtime)
      await realtime.connect()
      const created = when(realtime, 'event', (e) => e.type === 'entity_event')
      const sensor = await api.api.v1.sensors.post({ tipo: 'temperatura', modelo: 'DHT22' })
      expect(sensor.status).toBe(201)
      expect(await created).toMatchObject({ entity_id: sensor.data!.id })
      const stats = await api.api.v1.ws.stats.get()
      expect(stats.status).toBe(200)
      expect(stats.data!.channels.sensors!.users.map((u) => u.user_id)).toEqual(['admin'])
      const list = await anonymous.api.v1.sensors.get()
      expect(list.data!.map((s) => s.id)).toEqual([sensor.data!.id])
    } finally {
      await server.stop()
    }
  })
})
