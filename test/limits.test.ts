// Limits at the door: WebSocket caps (server-wide and per address), body size, and CORS_ORIGINS.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { startTestServer, WsClient } from './helpers'

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
