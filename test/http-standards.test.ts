// HTTP conventions a proxy or a browser relies on: zstd, brotli and gzip for larger answers, ETag/304 and
// Cache-Control on static content, HEAD wherever GET is, 405 with Allow, a favicon, a promtool-clean
// /metrics, and permessage-deflate on the WebSocket when WEBSOCKET_COMPRESSION asks for it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { connect } from 'node:net'
import { brotliDecompressSync, gunzipSync, zstdDecompressSync } from 'node:zlib'
import { startTestServer, type TestServer } from './helpers'
import { promtoolCheckMetrics } from './standards-kit'

setDefaultTimeout(30_000)

let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
  const sensor = await server.api('POST', '/api/v1/sensors', {
    tipo: 'temperatura',
    modelo: 'DHT22',
  })
  const readings = Array.from({ length: 50 }, (_, i) => ({
    sensor_id: sensor.body.id,
    temperatura: 20 + i / 10,
  }))
  expect((await server.api('POST', '/api/v1/readings/batch', readings)).status).toBe(201)
})
afterAll(() => server.stop())

/** The raw answer: no automatic decompression, so Content-Encoding and the bytes are as sent. */
async function raw(path: string, headers: Record<string, string> = {}, method = 'GET') {
  const res = await fetch(`${server.base}${path}`, { method, headers, decompress: false })
  return { res, bytes: new Uint8Array(await res.arrayBuffer()) }
}

const decode = (encoding: string | null, bytes: Uint8Array) =>
  Buffer.from(
    encoding === 'br'
      ? brotliDecompressSync(bytes)
      : encoding === 'gzip'
        ? gunzipSync(bytes)
        : encoding === 'zstd'
          ? zstdDecompressSync(bytes)
          : bytes,
  ).toString()

describe('compression', () => {
  // Built per request (zstd first when accepted: the cheapest) or static (compressed once: brotli first).
  const COMPRESSIBLE = [
    ['/swagger/json', 'static'],
    ['/asyncapi.json', 'static'],
    ['/metrics', 'dynamic'],
    ['/api/v1/readings?limit=50', 'dynamic'],
    ['/swagger/assets/swagger-ui-bundle.js', 'static'],
  ] as const

  for (const [path, kind] of COMPRESSIBLE)
    test(`${path} goes out as zstd, brotli or gzip as the client asks, and decodes to what identity gives`, async () => {
      const plain = await raw(path, { 'accept-encoding': 'identity' })
      expect(plain.res.status).toBe(200)
      expect(plain.res.headers.get('content-encoding')).toBeNull()
      expect(plain.res.headers.get('vary')).toContain('Accept-Encoding')
      const text = decode(null, plain.bytes)
      for (const [accept, expected] of [
        ['gzip, deflate, br, zstd', kind === 'dynamic' ? 'zstd' : 'br'],
        ['gzip, deflate, br', 'br'],
        ['gzip, zstd', 'zstd'],
        ['gzip', 'gzip'],
        ['br;q=0, zstd;q=0, gzip', 'gzip'],
        ['gzip;q=0.5, br;q=0.9, zstd;q=0.8', 'br'],
      ] as const) {
        const { res, bytes } = await raw(path, { 'accept-encoding': accept })
        expect({ accept, encoding: res.headers.get('content-encoding') }).toEqual({
          accept,
          encoding: expected,
        })
        expect(bytes.byteLength).toBeLessThan(plain.bytes.byteLength / 2)
        const decoded = decode(expected, bytes)
        // /metrics moves between two scrapes; the rest is byte for byte the same.
        if (path === '/metrics') expect(decoded).toContain('vigia_http_requests_total')
        else expect(decoded).toBe(text)
      }
    })

  test('a compressed list keeps its status and X-Total-Count; a compressed 201 stays 201', async () => {
    const list = await raw('/api/v1/readings?limit=50', { 'accept-encoding': 'br' })
    expect(list.res.status).toBe(200)
    expect(list.res.headers.get('x-total-count')).toBe('50')
    expect(JSON.parse(decode('br', list.bytes))).toHaveLength(50)
    const batch = await fetch(`${server.base}/api/v1/readings/batch`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'accept-encoding': 'gzip' },
      body: JSON.stringify(Array.from({ length: 20 }, () => ({ sensor_id: 1, humedad: 40 }))),
      decompress: false,
    })
    expect(batch.status).toBe(201)
    expect(batch.headers.get('content-encoding')).toBe('gzip')
    expect(JSON.parse(decode('gzip', new Uint8Array(await batch.arrayBuffer())))).toHaveLength(20)
  })

  test('answers under 1 KiB, and errors, go out as they are', async () => {
    const small = await raw('/api/v1/sensors/1', { 'accept-encoding': 'br, gzip' })
    expect(small.res.status).toBe(200)
    expect(small.res.headers.get('content-encoding')).toBeNull()
    expect(JSON.parse(decode(null, small.bytes)).id).toBe(1)
    const missing = await raw('/api/v1/sensors/999', { 'accept-encoding': 'br, gzip' })
    expect(missing.res.status).toBe(404)
    expect(JSON.parse(decode(null, missing.bytes)).error).toBe('not_found')
  })
})

describe('static content', () => {
  const STATIC = [
    '/',
    '/websocket_client.html',
    '/dashboard.html',
    '/favicon.ico',
    '/swagger',
    '/swagger/assets/swagger-ui.css',
    '/asyncapi',
    '/asyncapi/assets/asyncapi.css',
    '/assets/vendor/uPlot.min.css',
    '/assets/client/index.js',
    '/swagger/json',
    '/asyncapi.json',
  ]

  for (const path of STATIC)
    test(`${path} has an ETag and Cache-Control, and answers 304 to If-None-Match`, async () => {
      const first = await fetch(`${server.base}${path}`)
      expect(first.status).toBe(200)
      const body = await first.text()
      const etag = first.headers.get('etag')
      expect(etag).toMatch(/^(W\/)?"[^"]+"$/)
      expect(first.headers.get('cache-control')).toMatch(/no-cache|max-age=\d+/)
      const again = await fetch(`${server.base}${path}`, { headers: { 'if-none-match': etag! } })
      expect(again.status).toBe(304)
      expect(await again.text()).toBe('')
      expect(again.headers.get('etag')).toBe(etag)
      const listed = await fetch(`${server.base}${path}`, {
        headers: { 'if-none-match': `"other", ${etag}` },
      })
      expect(listed.status).toBe(304)
      const changed = await fetch(`${server.base}${path}`, {
        headers: { 'if-none-match': '"stale"' },
      })
      expect(changed.status).toBe(200)
      expect(await changed.text()).toBe(body)
    })

  test('/favicon.ico is an icon', async () => {
    const res = await fetch(`${server.base}/favicon.ico`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toMatch(/^image\//)
    const bytes = new Uint8Array(await res.arrayBuffer())
    expect([...bytes.subarray(0, 4)]).toEqual([0, 0, 1, 0])
  })
})

/** Every GET route of the app, with its parameters filled in. */
const getPaths = () =>
  server.app.routes
    .filter((route) => route.method === 'GET' && !route.path.endsWith('*'))
    .map((route) =>
      route.path
        .replace(':channel', 'general')
        .replace(':file', 'swagger-ui.css')
        .replace(':tipo', 'temperatura')
        .replace(/:\w+/g, '1'),
    )

describe('methods', () => {
  test('HEAD answers wherever GET does, with its status and content type and no body', async () => {
    const paths = [...new Set(getPaths())]
    expect(paths.length).toBeGreaterThan(20)
    for (const path of paths) {
      const get = await fetch(`${server.base}${path}`)
      await get.arrayBuffer()
      const head = await fetch(`${server.base}${path}`, { method: 'HEAD' })
      expect({ path, status: head.status, body: await head.text() }).toEqual({
        path,
        status: get.status,
        body: '',
      })
      expect(head.headers.get('content-type')).toBe(get.headers.get('content-type'))
    }
  })

  test('a method a known path does not serve answers 405 with Allow listing those it does, each of which is served', async () => {
    const cases: [string, string, string[]][] = [
      ['PUT', '/api/v1/sensors', ['GET', 'HEAD', 'POST', 'OPTIONS']],
      ['POST', '/api/v1/sensors/1', ['GET', 'HEAD', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']],
      ['DELETE', '/health', ['GET', 'HEAD', 'OPTIONS']],
      ['POST', '/metrics', ['GET', 'HEAD', 'OPTIONS']],
      ['PATCH', '/swagger/json', ['GET', 'HEAD', 'OPTIONS']],
      ['PUT', '/websocket_client.html', ['GET', 'HEAD', 'OPTIONS']],
      ['DELETE', '/api/v1/ws/stats', ['GET', 'HEAD', 'OPTIONS']],
    ]
    for (const [method, path, allowed] of cases) {
      const res = await server.api(method, path, method === 'DELETE' ? undefined : {})
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 405 })
      expect(res.body).toMatchObject({ error: 'method_not_allowed' })
      expect(res.headers.get('allow')?.split(', ')).toEqual(allowed)
    }
    const listed = (await server.api('PUT', '/api/v1/locations')).headers.get('allow')!.split(', ')
    for (const method of listed.filter((m) => m !== 'OPTIONS')) {
      const res = await fetch(`${server.base}/api/v1/locations`, {
        method,
        headers: { 'content-type': 'application/json' },
        body: method === 'POST' ? JSON.stringify({ nombre: 'Sala' }) : undefined,
      })
      expect({ method, status: res.status }).toEqual({
        method,
        status: method === 'POST' ? 201 : 200,
      })
    }
  })

  test('the PUT and PATCH a prediction refuses carry Allow too; OPTIONS answers 204 with Allow; an unknown path is still a 404', async () => {
    const put = await server.api('PUT', '/api/v1/predictions/1', {})
    expect(put.status).toBe(405)
    expect(put.headers.get('allow')).toBe('GET, HEAD, DELETE, OPTIONS')
    const options = await fetch(`${server.base}/api/v1/readings/1`, { method: 'OPTIONS' })
    expect(options.status).toBe(204)
    expect(options.headers.get('allow')).toBe('GET, HEAD, PUT, PATCH, DELETE, OPTIONS')
    const unknown = await server.api('PUT', '/api/v1/nothing-here')
    expect(unknown.status).toBe(404)
    expect(unknown.body.error).toBe('route_not_found')
  })
})

describe('GET /metrics', () => {
  test('passes promtool check metrics, with running totals as counters and no gauge named _total', async () => {
    await server.api('GET', '/api/v1/sensors')
    const text = await (await fetch(`${server.base}/metrics`)).text()
    const check = await promtoolCheckMetrics(text)
    expect(check).toEqual({ ok: true, output: '' })
    const types = Object.fromEntries(
      [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => [m[1], m[2]]),
    )
    for (const [name, type] of Object.entries(types))
      if (name.endsWith('_total')) expect({ name, type }).toEqual({ name, type: 'counter' })
    // The series CONTRACT §5 names keep their names.
    for (const name of [
      'vigia_ws_connections',
      'vigia_ws_messages_sent_total',
      'vigia_events_emitted_total',
      'vigia_ws_dropped_total',
      'vigia_http_requests_total',
      'vigia_http_request_duration_seconds',
    ])
      expect(types[name]).toBeDefined()
    expect(types.vigia_deployment_events_emitted_total).toBe('counter')
    expect(types.vigia_deployment_ws_messages_sent_total).toBe('counter')
  })
})

/** The 101 answer's headers and the first byte of the first frame, from a hand-made handshake. */
function handshake(port: number): Promise<{ head: string; firstByte: number }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1')
    let buffer = Buffer.alloc(0)
    socket.on('connect', () =>
      socket.write(
        [
          'GET /api/v1/ws?channel=general HTTP/1.1',
          `Host: 127.0.0.1:${port}`,
          'Upgrade: websocket',
          'Connection: Upgrade',
          'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
          'Sec-WebSocket-Version: 13',
          'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits',
          '',
          '',
        ].join('\r\n'),
      ),
    )
    socket.on('data', (data) => {
      buffer = Buffer.concat([buffer, data as Buffer])
      const end = buffer.indexOf('\r\n\r\n')
      if (end < 0 || buffer.length <= end + 4) return
      socket.destroy()
      resolve({ head: buffer.subarray(0, end).toString(), firstByte: buffer[end + 4]! })
    })
    socket.on('error', reject)
  })
}

describe('WEBSOCKET_COMPRESSION', () => {
  test('off by default: permessage-deflate is not negotiated', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'sensors' })
    expect(client.socket.extensions).toBe('')
    client.close()
    const { head, firstByte } = await handshake(server.port)
    expect(head).toStartWith('HTTP/1.1 101')
    expect(head.toLowerCase()).not.toContain('permessage-deflate')
    expect(firstByte & 0x40).toBe(0)
  })

  test('true: permessage-deflate is negotiated, frames are compressed, and a client reads them intact', async () => {
    const compressed = await startTestServer({ WEBSOCKET_COMPRESSION: 'true' })
    try {
      const { head, firstByte } = await handshake(compressed.port)
      expect(head.toLowerCase()).toContain('sec-websocket-extensions: permessage-deflate')
      expect(firstByte & 0x40).toBe(0x40)
      const client = await compressed.ws('/api/v1/ws', { channel: 'sensors' })
      expect(client.socket.extensions).toContain('permessage-deflate')
      await client.next((m) => m.type === 'connection')
      const nombre = 'ñ'.repeat(150)
      await compressed.api('POST', '/api/v1/sensors', {
        tipo: 'temperatura',
        modelo: 'DHT22',
        nombre,
      })
      const event = await client.next((m) => m.type === 'entity_event')
      expect(event.data.nombre).toBe(nombre)
      client.close()
    } finally {
      await compressed.stop()
    }
  })
})
