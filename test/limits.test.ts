// Limits at the door: WebSocket caps (server-wide, per address, channels per connection), the stats'
// size, body size, time and type, requests in progress per address, and CORS_ORIGINS.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { InProgress } from '../src/lib/in-progress'
import { metric, startTestServer, until, WsClient } from './helpers'

// bunfig's [test] timeout is not read by Bun 1.4.5; argon2 hashing and real servers need more than 5 s under load.
setDefaultTimeout(30_000)

describe('WebSocket caps', () => {
  test('past WEBSOCKET_MAX_CONNECTIONS a socket is closed 1013, and a socket that goes frees its place at once', async () => {
    const server = await startTestServer({ WEBSOCKET_MAX_CONNECTIONS: '2' })
    try {
      const a = await server.ws('/api/v1/ws', { channel: 'general' })
      const b = await server.ws('/api/v1/ws', { channel: 'sensors' })
      await Promise.all([a.connected(), b.connected()])
      for (let i = 0; i < 3; i++) {
        const extra = await server.ws('/api/v1/ws', { channel: 'general' })
        expect((await extra.closed).code).toBe(1013)
      }
      expect((await server.api('GET', '/api/v1/ws/stats')).body.total_connections).toBe(2)
      await a.close()
      const c = await server.ws('/api/v1/ws', { channel: 'general' })
      await c.connected()
      const d = await server.ws('/api/v1/ws', { channel: 'general' })
      expect((await d.closed).code).toBe(1013)
      await Promise.all([b.close(), c.close()])
    } finally {
      await server.stop()
    }
  })

  test('a socket the server drops (policy close) frees its place too', async () => {
    const server = await startTestServer({
      WEBSOCKET_MAX_CONNECTIONS: '1',
      WEBSOCKET_MESSAGES_PER_SECOND: '1',
    })
    try {
      const flooder = await server.ws('/api/v1/ws')
      await flooder.connected()
      for (let i = 0; i < 20; i++) flooder.send({ action: 'ping' })
      expect((await flooder.closed).code).toBe(1008)
      const next = await server.ws('/api/v1/ws')
      await next.connected()
      await next.close()
    } finally {
      await server.stop()
    }
  })

  test('past WEBSOCKET_MAX_CONNECTIONS_PER_IP one address gets 1013 while others still get in', async () => {
    const server = await startTestServer({
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '2',
      TRUST_PROXY: 'true',
    })
    try {
      const from = (address: string) => ({ 'x-forwarded-for': address })
      const first = await server.ws('/api/v1/ws', {}, from('198.51.100.7'))
      const second = await server.ws('/api/v1/ws', {}, from('198.51.100.7'))
      await Promise.all([first.connected(), second.connected()])
      const third = await server.ws('/api/v1/ws', {}, from('198.51.100.7'))
      expect((await third.closed).code).toBe(1013)
      const elsewhere = await server.ws('/api/v1/ws', {}, from('198.51.100.8'))
      await elsewhere.connected()
      await first.close()
      const again = await server.ws('/api/v1/ws', {}, from('198.51.100.7'))
      await again.connected()
      await Promise.all([second.close(), elsewhere.close(), again.close()])
    } finally {
      await server.stop()
    }
  })

  test('without TRUST_PROXY the per-address cap uses the socket peer, whatever X-Forwarded-For says', async () => {
    const server = await startTestServer({ WEBSOCKET_MAX_CONNECTIONS_PER_IP: '1' })
    try {
      const first = await server.ws('/api/v1/ws', {}, { 'x-forwarded-for': '198.51.100.1' })
      await first.connected()
      const second = await server.ws('/api/v1/ws', {}, { 'x-forwarded-for': '198.51.100.2' })
      expect((await second.closed).code).toBe(1013)
      await first.close()
    } finally {
      await server.stop()
    }
  })
})

describe('channels and stats', () => {
  test('past WEBSOCKET_MAX_CHANNELS a handshake is closed 4400 and a subscribe gets too_many_channels', async () => {
    const server = await startTestServer({ WEBSOCKET_MAX_CHANNELS: '3' })
    try {
      const many = await server.ws('/api/v1/ws', {
        channel: 'sensors:1,sensors:2,sensors:3,sensors:4',
      })
      const closed = await many.closed
      expect(closed.code).toBe(4400)
      expect(closed.reason).toContain('WEBSOCKET_MAX_CHANNELS')

      const client = await server.ws('/api/v1/ws', { channel: 'sensors:1,sensors:2' })
      await client.connected()
      await client.subscribe('sensors:3')
      client.send({ action: 'subscribe', channel: 'sensors:4' })
      const refused = await client.next((m) => m.type === 'error')
      expect(refused.code).toBe('too_many_channels')
      // Joining a channel it already holds is no new channel.
      await client.subscribe('sensors:3')
      await client.unsubscribe('sensors:1')
      await client.subscribe('sensors:4')
      const stats = (await server.api('GET', '/api/v1/ws/stats')).body
      expect(Object.keys(stats.channels).sort()).toEqual(['sensors:2', 'sensors:3', 'sensors:4'])
      await client.close()
    } finally {
      await server.stop()
    }
  })

  test('the stats answer stays small however many channels and users the clients hold, with exact counts', async () => {
    const server = await startTestServer({
      WEBSOCKET_MAX_CONNECTIONS: '200',
      WEBSOCKET_MAX_CHANNELS: '10',
    })
    try {
      // 120 users on one channel, and 60 × 10 = 600 distinct channels.
      const clients: WsClient[] = []
      for (let i = 0; i < 60; i++) {
        const channels = Array.from({ length: 9 }, (_, j) => `sensors:${i * 10 + j + 1}`)
        clients.push(
          await server.ws('/api/v1/ws', {
            channel: ['general', ...channels].join(','),
            user_id: `u${i}`,
          }),
        )
      }
      for (let i = 60; i < 120; i++)
        clients.push(await server.ws('/api/v1/ws', { channel: 'general', user_id: `u${i}` }))
      await Promise.all(clients.map((c) => c.connected()))

      const res = await server.api('GET', '/api/v1/ws/stats')
      const stats = res.body
      expect(stats.total_connections).toBe(120)
      expect(stats.total_channels).toBe(1 + 60 * 9)
      expect(stats.truncated).toBe(true)
      expect(Object.keys(stats.channels).length).toBe(500)
      // The busiest channel is kept, with its exact count and a bounded list of users.
      expect(stats.channels.general.connections).toBe(120)
      expect(stats.channels.general.users.length).toBe(50)
      expect(stats.deployment.channels.general.connections).toBe(120)
      expect(stats.deployment.truncated).toBe(true)
      const one = (await server.api('GET', '/api/v1/ws/stats/general')).body
      expect(one.connections).toBe(120)
      expect(one.users.length).toBe(50)
      expect(one.truncated).toBe(true)
      await Promise.all(clients.map((c) => c.close()))
    } finally {
      await server.stop()
    }
  }, 60_000)
})

describe('request bodies', () => {
  test('larger than BODY_LIMIT_BYTES get a JSON 413 and store nothing', async () => {
    const server = await startTestServer({ BODY_LIMIT_BYTES: '2048' })
    try {
      const big = { tipo: 'temperatura', modelo: 'DHT22', nombre: 'x'.repeat(3000) }
      const res = await server.api('POST', '/api/v1/sensors', big)
      expect(res.status).toBe(413)
      expect(res.body).toMatchObject({
        error: 'payload_too_large',
        message: expect.stringContaining('BODY_LIMIT_BYTES'),
        limit: 2048,
      })
      const batch = Array.from({ length: 100 }, () => ({ sensor_id: 1, temperatura: 20 }))
      expect((await server.api('POST', '/api/v1/readings/batch', batch)).status).toBe(413)
      expect(
        (await server.api('POST', '/auth/login', { username: 'a', password: 'b'.repeat(3000) }))
          .status,
      ).toBe(413)
      // A body just under the limit goes through to validation.
      const under = await server.api('POST', '/api/v1/sensors', {
        ...big,
        nombre: 'x'.repeat(1900),
      })
      expect(under.status).toBe(422)
      expect(under.body.field).toBe('nombre')
      expect((await server.api('GET', '/api/v1/sensors')).body).toEqual([])
    } finally {
      await server.stop()
    }
  })

  test('sent chunked, without Content-Length, get a JSON 411', async () => {
    const server = await startTestServer()
    try {
      const body = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode('{"tipo":"temperatura","modelo":"DHT22"}'))
          controller.close()
        },
      })
      const res = await fetch(`${server.base}/api/v1/sensors`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body,
        duplex: 'half',
      } as RequestInit)
      expect(res.status).toBe(411)
      expect((await res.json()).error).toBe('length_required')
      expect((await server.api('GET', '/api/v1/sensors')).body).toEqual([])
    } finally {
      await server.stop()
    }
  })
})

/** A raw HTTP/1.1 connection: what a client that sends its request slowly looks like. */
async function rawConnection(port: number) {
  let text = ''
  let closed = false
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data(_socket, data) {
        text += data.toString()
      },
      close() {
        closed = true
      },
    },
  })
  return {
    write: (data: string) => socket.write(data),
    text: () => text,
    closed: () => closed,
    end: () => socket.end(),
  }
}

const slowBody = (path = '/api/v1/sensors') =>
  `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{`

describe('slow and unusual requests', () => {
  test('a body that does not arrive within HTTP_BODY_TIMEOUT gets a JSON 408 and its connection is closed', async () => {
    const server = await startTestServer({ HTTP_BODY_TIMEOUT: '1' })
    try {
      const conn = await rawConnection(server.port)
      conn.write(slowBody())
      await until(async () => conn.closed(), 'the server to close the connection', 5000)
      expect(conn.text()).toStartWith('HTTP/1.1 408')
      const body = JSON.parse(conn.text().split('\r\n\r\n')[1]!)
      expect(body.error).toBe('body_timeout')
      expect(body.message).toContain('HTTP_BODY_TIMEOUT')
      expect((await server.api('GET', '/api/v1/sensors')).body).toEqual([])
    } finally {
      await server.stop()
    }
  })

  test('past HTTP_MAX_REQUESTS_PER_IP requests in progress one address gets 429 at once while other addresses are served', async () => {
    const server = await startTestServer({
      HTTP_MAX_REQUESTS_PER_IP: '5',
      HTTP_BODY_TIMEOUT: '30',
      TRUST_PROXY: 'true',
    })
    const from = (address: string) => ({ 'x-forwarded-for': address })
    const held: Awaited<ReturnType<typeof rawConnection>>[] = []
    try {
      // Requests that are over free their place, whatever the route and the answer.
      for (let i = 0; i < 8; i++) {
        for (const path of ['/health', '/metrics', '/nowhere', '/api/v1/ws', '/api/v1/sensors'])
          expect((await server.api('GET', path, undefined, from('203.0.113.5'))).status).not.toBe(
            429,
          )
        const socket = await server.ws('/api/v1/ws', {}, from('203.0.113.5'))
        await socket.connected()
        await socket.close()
      }
      for (let i = 0; i < 5; i++) {
        const conn = await rawConnection(server.port)
        conn.write(slowBody().replace('\r\n\r\n', '\r\nX-Forwarded-For: 203.0.113.5\r\n\r\n'))
        held.push(conn)
      }
      await until(
        async () =>
          (await server.api('GET', '/health', undefined, from('203.0.113.5'))).status === 429,
        'the slow requests to fill the address quota',
      )
      const refused = await server.api('GET', '/health', undefined, from('203.0.113.5'))
      expect(refused.status).toBe(429)
      expect(refused.body.error).toBe('too_many_requests')
      expect(refused.headers.get('retry-after')).toBe('1')
      expect((await server.api('GET', '/health', undefined, from('198.51.100.1'))).status).toBe(200)
      // Once the slow ones go, their address is served again.
      for (const conn of held) conn.end()
      await until(
        async () =>
          (await server.api('GET', '/health', undefined, from('203.0.113.5'))).status === 200,
        'the address to be served again',
      )
    } finally {
      for (const conn of held) conn.end()
      await server.stop()
    }
  })

  test('the count per address stays exact as counting starts and stops with the load, and a client gone is let go before a refusal', () => {
    const limits = new InProgress(4, (r) => r.headers.get('x-forwarded-for')!)
    const from = (address: string, signal?: AbortSignal) =>
      new Request('http://vigia.test/', { headers: { 'x-forwarded-for': address }, signal })
    const a = [from('a'), from('a'), from('a')]
    const b = from('b')
    for (const r of [...a, b]) expect(limits.admit(r)).toBeUndefined()
    // Four in progress: counting starts, and a's fourth is still within the limit.
    const gone = new AbortController()
    const fourth = from('a', gone.signal)
    expect(limits.admit(fourth)).toBeUndefined()
    expect(limits.admit(from('a'))).toBe(4)
    expect(limits.admit(from('b'))).toBeUndefined()
    // a's fourth client goes away without an answer: let go before the next refusal.
    gone.abort()
    const next = from('a')
    expect(limits.admit(next)).toBeUndefined()
    expect(limits.admit(from('a'))).toBe(4)
    // The load falls under half the limit (counting stops), then rises again: counted afresh.
    for (const r of [...a, b, next]) limits.release(r)
    limits.release(fourth)
    const again = [from('a'), from('a'), from('a'), from('b')]
    for (const r of again) expect(limits.admit(r)).toBeUndefined()
    expect(limits.admit(from('a'))).toBeUndefined()
    expect(limits.admit(from('a'))).toBe(4)
  })

  test('a JSON route refuses any other Content-Type with 415 and stores nothing', async () => {
    const server = await startTestServer()
    try {
      const body = JSON.stringify({ tipo: 't', modelo: 'plain' })
      for (const type of [
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        '',
      ])
        for (const path of ['/api/v1/sensors', '/api/v1/locations']) {
          const res = await fetch(`${server.base}${path}`, {
            method: 'POST',
            body: new Blob([body], { type }),
          })
          expect({ path, type, status: res.status }).toEqual({ path, type, status: 415 })
          expect((await res.json()).error).toBe('unsupported_media_type')
        }
      const json = await server.api('POST', '/api/v1/sensors', body, {
        'content-type': 'application/json; charset=utf-8',
      })
      expect(json.status).toBe(201)
      expect((await server.api('GET', '/api/v1/sensors')).body).toHaveLength(1)
    } finally {
      await server.stop()
    }
  })
})

describe('CORS_ORIGINS', () => {
  const corsHeaders = (headers: Headers) =>
    Object.keys(headers.toJSON()).filter((name) => name.startsWith('access-control-'))

  test('a listed origin gets its CORS headers; any other gets none', async () => {
    const server = await startTestServer({
      CORS_ORIGINS: 'https://app.example.com,https://ops.example.com',
    })
    try {
      const listed = await fetch(`${server.base}/api/v1/sensors`, {
        headers: { origin: 'https://ops.example.com' },
      })
      expect(listed.headers.get('access-control-allow-origin')).toBe('https://ops.example.com')
      expect(listed.headers.get('access-control-expose-headers')).toContain('X-Total-Count')
      expect(listed.headers.get('vary')).toContain('Origin')

      const other = await fetch(`${server.base}/api/v1/sensors`, {
        headers: { origin: 'https://evil.example.net' },
      })
      expect(other.status).toBe(200)
      expect(corsHeaders(other.headers)).toEqual([])

      const preflight = (origin: string) =>
        fetch(`${server.base}/api/v1/sensors`, {
          method: 'OPTIONS',
          headers: {
            origin,
            'access-control-request-method': 'POST',
            'access-control-request-headers': 'authorization, content-type',
          },
        })
      const ok = await preflight('https://app.example.com')
      expect(ok.status).toBe(204)
      expect(ok.headers.get('access-control-allow-origin')).toBe('https://app.example.com')
      expect(ok.headers.get('access-control-allow-methods')).toContain('POST')
      expect(ok.headers.get('access-control-allow-headers')).toContain('Authorization')
      const refused = await preflight('https://evil.example.net')
      expect(refused.status).toBe(403)
      expect(corsHeaders(refused.headers)).toEqual([])
      expect((await refused.json()).error).toBe('origin_not_allowed')
    } finally {
      await server.stop()
    }
  })

  test('the WebSocket upgrade of an origin not listed is refused with 403; listed origins and clients without Origin get in', async () => {
    const server = await startTestServer({ CORS_ORIGINS: 'https://app.example.com' })
    try {
      const url = `${server.base.replace(/^http/, 'ws')}/api/v1/ws?channel=general`
      await expect(WsClient.connect(url, { origin: 'https://evil.example.net' })).rejects.toThrow()
      const raw = await fetch(`${server.base}/api/v1/ws`, {
        headers: {
          origin: 'https://evil.example.net',
          upgrade: 'websocket',
          connection: 'Upgrade',
          'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
          'sec-websocket-version': '13',
        },
      })
      expect(raw.status).toBe(403)
      expect(await raw.json()).toMatchObject({ error: 'origin_not_allowed' })
      expect((await server.api('GET', '/api/v1/ws/stats')).body.total_connections).toBe(0)

      const listed = await WsClient.connect(url, { origin: 'https://app.example.com' })
      await listed.connected()
      const service = await WsClient.connect(url)
      await service.connected()
      await Promise.all([listed.close(), service.close()])
    } finally {
      await server.stop()
    }
  })

  test('a write from an origin not listed is refused with 403 whatever its Content-Type, and stores nothing', async () => {
    const server = await startTestServer({ CORS_ORIGINS: 'https://app.example.com' })
    try {
      const body = JSON.stringify({ tipo: 't', modelo: 'cross-site' })
      for (const type of ['text/plain', 'application/json'])
        for (const method of ['POST', 'PUT', 'PATCH', 'DELETE']) {
          const res = await fetch(`${server.base}/api/v1/sensors${method === 'POST' ? '' : '/1'}`, {
            method,
            headers: { origin: 'https://evil.example.net', 'content-type': type },
            body,
          })
          expect({ type, method, status: res.status }).toEqual({ type, method, status: 403 })
          expect((await res.json()).error).toBe('origin_not_allowed')
        }
      expect((await server.api('GET', '/api/v1/sensors')).body).toEqual([])
      const listed = await server.api('POST', '/api/v1/sensors', body, {
        origin: 'https://app.example.com',
      })
      expect(listed.status).toBe(201)
      // Reads from anywhere are still answered (without CORS headers for an unlisted origin).
      const read = await fetch(`${server.base}/api/v1/sensors`, {
        headers: { origin: 'https://evil.example.net' },
      })
      expect(read.status).toBe(200)
    } finally {
      await server.stop()
    }
  })

  test('* answers every origin with Access-Control-Allow-Origin: * and lets every WebSocket in', async () => {
    const server = await startTestServer({ CORS_ORIGINS: '*' })
    try {
      const res = await fetch(`${server.base}/health`, {
        headers: { origin: 'https://any.example' },
      })
      expect(res.headers.get('access-control-allow-origin')).toBe('*')
      const url = `${server.base.replace(/^http/, 'ws')}/api/v1/ws`
      const client = await WsClient.connect(url, { origin: 'https://any.example' })
      await client.connected()
      await client.close()
    } finally {
      await server.stop()
    }
  })
})
