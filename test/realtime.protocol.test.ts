// The WebSocket protocol: greeting, actions and their acknowledgements, errors, close codes, limits, stats.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { expectError, ISO_Z } from './assert'
import { settle, startTestServer, type TestServer } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

const open = async (query: Record<string, string> = {}) => {
  const client = await server.ws('/api/v1/ws', query)
  await client.connected()
  return client
}

const isError = (m: Record<string, any>) => m.type === 'error'

describe('the connection message', () => {
  test('names the channel and carries the timestamp, the channel list and the event position', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'sensors', user_id: 'ana' })
    const hello = await client.connected()
    expect(hello).toEqual({
      type: 'connection',
      status: 'connected',
      channel: 'sensors',
      timestamp: expect.stringMatching(ISO_Z),
      channels: ['sensors'],
      epoch: expect.any(String),
      last_seq: server.ctx.realtime.publisher.lastSeq,
    })
    expect(client.messages[0]).toBe(hello)
    await client.close()
  })

  test('defaults to general when no channel is given', async () => {
    const client = await server.ws('/api/v1/ws')
    expect(await client.connected()).toMatchObject({ channel: 'general', channels: ['general'] })
    await client.close()
  })

  test('lists every channel of channel=a,b once', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'readings:4, anomalies,readings:4' })
    expect(await client.connected()).toMatchObject({ channels: ['readings:4', 'anomalies'] })
    await client.close()
  })
})

describe('client actions', () => {
  test('subscribe is acknowledged and from then on the channel delivers', async () => {
    const client = await open({ channel: 'locations' })
    const ack = await client.subscribe('sensors:42')
    expect(ack).toEqual({
      type: 'connection',
      status: 'subscribed',
      channel: 'sensors:42',
      timestamp: expect.stringMatching(ISO_Z),
      channels: ['locations', 'sensors:42'],
      epoch: expect.any(String),
      last_seq: expect.any(Number),
    })
    await server.api('POST', '/api/v1/ws/test-event?channel=sensors:42&message=llega')
    expect(await client.event()).toMatchObject({ type: 'system_event', message: 'llega' })
    await client.close()
  })

  test('unsubscribe is acknowledged and from then on the channel is silent', async () => {
    const client = await open({ channel: 'locations,sensors' })
    const ack = await client.unsubscribe('sensors')
    expect(ack).toMatchObject({
      status: 'unsubscribed',
      channel: 'sensors',
      channels: ['locations'],
    })
    const mark = client.messages.length
    await server.api('POST', '/api/v1/ws/test-event?channel=sensors&message=no-llega')
    await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })
    await settle(server, client, 'locations')
    const after = client.messages.slice(mark)
    expect(after.filter((m) => !String(m.message).startsWith('marker-'))).toEqual([])
    await client.close()
  })

  test('a connection may leave every channel and join again', async () => {
    const client = await open({ channel: 'predictions' })
    expect((await client.unsubscribe('predictions')).channels).toEqual([])
    expect((await client.subscribe('predictions')).channels).toEqual(['predictions'])
    await server.api('POST', '/api/v1/ws/test-event?channel=predictions&message=vuelve')
    expect(await client.event()).toMatchObject({ message: 'vuelve' })
    await client.close()
  })

  test('subscribing twice to a channel still delivers each event once', async () => {
    const client = await open({ channel: 'anomalies' })
    await client.subscribe('anomalies')
    await server.api('POST', '/api/v1/ws/test-event?channel=anomalies&message=una-vez')
    await settle(server, client, 'anomalies')
    expect(client.messages.filter((m) => m.message === 'una-vez')).toHaveLength(1)
    await client.close()
  })

  test('ping is answered with pong', async () => {
    const client = await open()
    client.send({ action: 'ping' })
    expect(await client.next((m) => m.type === 'pong')).toEqual({
      type: 'pong',
      timestamp: expect.stringMatching(ISO_Z),
    })
    await client.close()
  })
})

describe('a message the server cannot use', () => {
  const bad: [string, string | Uint8Array, string][] = [
    ['text that is not JSON', '{"action": "ping"', 'invalid_json'],
    ['plain words', 'hola', 'invalid_json'],
    ['a number', '42', 'invalid_message'],
    ['an array', '[{"action":"ping"}]', 'invalid_message'],
    ['null', 'null', 'invalid_message'],
    ['a binary frame', new Uint8Array([123, 125]), 'invalid_message'],
    ['an unknown action', '{"action":"dance"}', 'unknown_action'],
    ['an object without action', '{"channel":"sensors"}', 'unknown_action'],
    [
      'subscribe to an unknown channel',
      '{"action":"subscribe","channel":"weather"}',
      'unknown_channel',
    ],
    ['subscribe to sensors:0', '{"action":"subscribe","channel":"sensors:0"}', 'unknown_channel'],
    [
      'subscribe to constructor:1',
      '{"action":"subscribe","channel":"constructor:1"}',
      'unknown_channel',
    ],
    ['subscribe without a channel', '{"action":"subscribe"}', 'unknown_channel'],
    [
      'subscribe with a non-string channel',
      '{"action":"subscribe","channel":5}',
      'unknown_channel',
    ],
    [
      'unsubscribe from a channel not joined',
      '{"action":"unsubscribe","channel":"readings"}',
      'not_subscribed',
    ],
    [
      'unsubscribe from an unknown channel',
      '{"action":"unsubscribe","channel":"nope"}',
      'unknown_channel',
    ],
  ]

  for (const [what, frame, code] of bad)
    test(`${what} gets an error message and the connection stays usable`, async () => {
      const client = await open({ channel: 'general' })
      client.socket.send(frame)
      const error = await client.next(isError)
      expect(error).toEqual({ type: 'error', code, message: expect.any(String) })
      expect(error.message.length).toBeGreaterThan(20)
      client.send({ action: 'ping' })
      await client.next((m) => m.type === 'pong')
      await server.api('POST', '/api/v1/ws/test-event?message=sigue')
      expect(await client.event((m) => m.message === 'sigue')).toMatchObject({
        type: 'system_event',
      })
      expect((await client.subscribe('sensors')).channels).toEqual(['general', 'sensors'])
      await client.close()
    })

  test('a failed subscribe leaves the channel list as it was', async () => {
    const client = await open({ channel: 'sensors' })
    client.send({ action: 'subscribe', channel: 'sensors:abc' })
    await client.next(isError)
    expect((await client.subscribe('readings')).channels).toEqual(['sensors', 'readings'])
    await client.close()
  })
})

describe('a bad handshake query', () => {
  const refused = async (query: Record<string, string>) => {
    const client = await server.ws('/api/v1/ws', query)
    const closed = await client.closed
    return { closed, messages: client.messages }
  }

  for (const channel of [
    'weather',
    'sensors,weather',
    'sensors:0',
    'sensors:-1',
    'general:1',
    'Sensors',
    'toString:1',
  ])
    test(`channel=${channel} closes with 4400 and a reason naming the channel`, async () => {
      const { closed, messages } = await refused({ channel })
      expect(closed.code).toBe(4400)
      expect(closed.reason).toContain('Unknown channel')
      expect(messages).toEqual([])
    })

  for (const since of ['abc', '-1', '1.5', ''])
    test(`since=${JSON.stringify(since)} closes with 4400`, async () => {
      const { closed, messages } = await refused({ since })
      expect(closed.code).toBe(4400)
      expect(closed.reason).toContain('since')
      expect(messages).toEqual([])
    })

  test('a refused socket is not counted in the stats', async () => {
    const before = (await server.api('GET', '/api/v1/ws/stats')).body.total_connections
    await refused({ channel: 'nope' })
    expect((await server.api('GET', '/api/v1/ws/stats')).body.total_connections).toBe(before)
  })
})

describe('a plain HTTP request on a WebSocket endpoint', () => {
  for (const path of ['/api/v1/ws', '/api/v1/ws/secure'])
    test(`GET ${path} without an upgrade answers 426 with the error envelope and Upgrade: websocket`, async () => {
      const res = await server.api('GET', `${path}?channel=general`)
      expect(res.status).toBe(426)
      expect(res.headers.get('upgrade')).toBe('websocket')
      expectError(res, 426, 'upgrade_required')
      expect(res.body.message).toContain('WebSocket')
    })
})

describe('stats', () => {
  test('count connections and users per channel as sockets come and go', async () => {
    // The original's fields; the instance and deployment figures beside them are checked in scale.test.ts.
    const stats = async () => {
      const { total_channels, total_connections, channels } = (
        await server.api('GET', '/api/v1/ws/stats')
      ).body
      return { total_channels, total_connections, channels }
    }
    const base = await stats()
    expect(base).toEqual({ total_channels: 0, total_connections: 0, channels: {} })

    const ana = await open({ channel: 'locations:7,general', user_id: 'ana' })
    const anon = await open({ channel: 'locations:7' })
    let now = await stats()
    expect(now.total_channels).toBe(2)
    expect(now.total_connections).toBe(2)
    expect(now.channels['locations:7']).toEqual({
      connections: 2,
      users: [{ user_id: 'ana', connected_at: expect.stringMatching(ISO_Z) }],
    })
    expect(now.channels.general.connections).toBe(1)
    const one = await server.api('GET', '/api/v1/ws/stats/locations:7')
    expect(one.status).toBe(200)
    expect(one.body).toMatchObject({ channel: 'locations:7', ...now.channels['locations:7'] })

    await ana.subscribe('anomalies:7')
    expect((await stats()).channels['anomalies:7'].users[0].user_id).toBe('ana')
    await ana.unsubscribe('general')
    expect((await stats()).channels.general).toBeUndefined()

    await ana.close()
    now = await stats()
    expect(now.total_channels).toBe(1)
    expect(now.channels['locations:7']).toEqual({ connections: 1, users: [] })
    await anon.close()
    expect(await stats()).toEqual(base)
  })

  test('a channel nobody is on has zero connections', async () => {
    const res = await server.api('GET', '/api/v1/ws/stats/predictions:3')
    expect(res.body).toMatchObject({ channel: 'predictions:3', connections: 0, users: [] })
  })

  test('stats for a name that is not a channel is a 404 with the error envelope', async () => {
    for (const name of ['weather', 'sensors:0', 'general:1', 'constructor:1'])
      expectError(await server.api('GET', `/api/v1/ws/stats/${name}`), 404, 'not_found')
  })
})

describe('WEBSOCKET_MAX_CONNECTIONS', () => {
  let small: TestServer
  beforeAll(async () => {
    small = await startTestServer({ WEBSOCKET_MAX_CONNECTIONS: '2' })
  })
  afterAll(() => small.stop())

  test('past the cap a socket is closed with 1013, and a place frees when a socket leaves', async () => {
    const connect = async () => {
      const client = await small.ws('/api/v1/ws')
      const first: Record<string, unknown> = await Promise.race([client.connected(), client.closed])
      return { client, first }
    }
    const a = await connect()
    const b = await connect()
    expect(a.first.type).toBe('connection')
    expect(b.first.type).toBe('connection')

    const c = await connect()
    expect(c.first).toEqual({ code: 1013, reason: expect.stringContaining('limit') })
    const stats = await small.api('GET', '/api/v1/ws/stats')
    expect(stats.body.total_connections).toBe(2)

    await a.client.close()
    const d = await connect()
    expect(d.first.type).toBe('connection')
    const e = await connect()
    expect(e.first).toMatchObject({ code: 1013 })

    const health = await small.api('GET', '/health')
    expect(health.body.websocket).toEqual({ connections: 2, max_connections: 2 })
    await Promise.all([b.client.close(), d.client.close()])
  })
})
