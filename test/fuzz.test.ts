// Hostile input everywhere: thousands of malformed, oversized, wrong-typed and malicious requests to every
// documented REST route and every WebSocket action. None may get a 5xx, stop the server or change data it refused.
import {
  afterAll,
  beforeAll,
  beforeEach,
  describe,
  expect,
  setDefaultTimeout,
  test,
} from 'bun:test'
import { readAfter } from '../src/realtime/event-log'
import type { TestServer, WsClient } from './helpers'
import { adminToken, bearer, startAuthServer } from './auth-kit'

// bunfig's [test] timeout is not read by Bun 1.4.5; argon2 hashing and real servers need more than 5 s under load.
setDefaultTimeout(30_000)

type Json = unknown
type Schema = Record<string, any>

const SQL = [
  "' OR '1'='1",
  '1; DROP TABLE sensors; --',
  "'); DELETE FROM users; --",
  '" OR ""="',
  '1 UNION SELECT password_hash FROM users',
  "admin'--",
]
const UNICODE = [
  '🔥💧🌡️',
  'ｓｅｎｓｏｒ',
  '\u202eevil\u202c',
  'a\u0000b',
  '\ud800',
  'ñandú çà',
  'Z̷̢͓a̵l̴g̶o̷',
  '\u200b',
  '\t\n\r',
]
const NUMBERS: Json[] = [
  0,
  -1,
  -0,
  1.5,
  1e308,
  -1e308,
  Number.MAX_SAFE_INTEGER + 2,
  -Number.MAX_SAFE_INTEGER - 2,
  2 ** 64,
  5e-324,
]
const PROTO_KEYS = ['__proto__', 'constructor', 'prototype']

/** Values that replace one field of an otherwise valid body. */
const HOSTILE_VALUES: Json[] = [
  null,
  true,
  false,
  '',
  ' ',
  [],
  {},
  [1, 2, 3],
  { nested: { deeper: [null] } },
  'x'.repeat(20_000),
  ...NUMBERS,
  ...SQL,
  ...UNICODE,
  ...PROTO_KEYS,
  { __proto__: { admin: true } },
  JSON.parse('{"__proto__":{"polluted":true}}'),
  { constructor: { prototype: { polluted: true } } },
  '2025-02-30T25:61:61Z',
  '9999-12-31T23:59:59Z',
  '1',
  '1e3',
  'NaN',
  'Infinity',
]

/** Whole bodies, sent raw. */
const RAW_BODIES: string[] = [
  '',
  '{',
  '}',
  'null',
  'true',
  '0',
  '"text"',
  '[]',
  '[{}]',
  '{"a":',
  '{"a":1,}',
  "{'single':'quotes'}",
  '{"n": NaN}',
  '{"n": Infinity}',
  '{"n": 1e999}',
  '{"n": -1e999}',
  '{"n": 123456789012345678901234567890}',
  '{"__proto__":{"admin":true},"tipo":"x","modelo":"y"}',
  '{"constructor":{"prototype":{"admin":true}}}',
  '{"a":1,"a":2}',
  '\u0000\u0001\u0002',
  '\ufeff{}',
  '['.repeat(5_000) + ']'.repeat(5_000),
  '{"a":'.repeat(3_000) + '1' + '}'.repeat(3_000),
  JSON.stringify({ blob: 'y'.repeat(60_000) }),
  JSON.stringify(Array.from({ length: 2_000 }, (_, i) => ({ i }))),
  SQL.join(' '),
]

/** Content types that do not match the body (or no body parser at all). */
const CONTENT_TYPES = [
  'text/plain',
  'application/xml',
  'application/x-www-form-urlencoded',
  'multipart/form-data; boundary=xyz',
  'application/octet-stream',
  'application/json; charset=utf-16',
  'image/png',
  'application/json, text/html',
  '',
]

const ID_VALUES = [
  '0',
  '-1',
  'abc',
  '1.5',
  '9'.repeat(40),
  '1e3',
  '0x10',
  'NaN',
  'Infinity',
  '9007199254740993',
  '%27%20OR%201%3D1--',
  '%00',
  '%F0%9F%94%A5',
  '__proto__',
  'constructor',
  '..%2F..%2Fetc%2Fpasswd',
  '99999999',
]

const QUERY_VALUES = [
  '-1',
  '0',
  '1e309',
  'abc',
  '',
  '%00',
  '9'.repeat(400),
  encodeURIComponent("' OR 1=1 --"),
  encodeURIComponent('🔥'),
  'true',
  '[]',
  '2025-13-45T99:99:99Z',
]
const QUERY_EXTRAS = [
  'limit=1&limit=2',
  '__proto__[admin]=1',
  'constructor[prototype][admin]=1',
  'limit[]=1',
  'a'.repeat(4000) + '=1',
  'sensor_id=1&sensor_id=abc',
]

const JUNK_AUTH = [
  'Bearer ',
  'Bearer abc',
  'Bearer a.b.c',
  'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiIsInJvbGUiOiJhZG1pbiJ9.',
  `Bearer ${'A'.repeat(9000)}`,
  'Basic YWRtaW46YWRtaW4=',
  'bearer\tx',
  `Bearer ${SQL[0]}`,
  'Bearer Ã©Ã¨',
  'Token x',
]

/** A valid value for a schema from the OpenAPI document: its example, default, or a plain one of its type. */
function sample(schema: Schema | undefined, name = ''): Json {
  if (!schema) return 'x'
  if (schema.examples?.length) return schema.examples[0]
  if (schema.default !== undefined && schema.format !== 'integer') return schema.default
  if (schema.enum) return schema.enum[0]
  if (schema.anyOf)
    return sample(
      schema.anyOf.find((s: Schema) => s.type !== 'null' && s.format !== 'integer') ??
        schema.anyOf[0],
      name,
    )
  const type = Array.isArray(schema.type)
    ? schema.type.find((t: string) => t !== 'null')
    : schema.type
  if (type === 'object')
    return Object.fromEntries(
      Object.entries(schema.properties ?? {}).map(([key, s]) => [key, sample(s as Schema, key)]),
    )
  if (type === 'array') return [sample(schema.items, name)]
  if (type === 'integer') return schema.minimum ?? 1
  if (type === 'number') return 1.5
  if (type === 'boolean') return true
  if (schema.format === 'date-time') return '2025-07-20T10:30:00Z'
  return name || 'x'
}

interface Route {
  method: string
  path: string
  body: Schema | undefined
  query: string[]
}

let server: TestServer
let admin: Record<string, string>
const refs: Record<string, number> = {}
let sentinels: [string, Json][] = []
let tried = 0
let failures: string[] = []
const statuses: Record<number, number> = {}

/** Events a refused request must not have caused: any change to an entity. */
async function changesSince(seq: number) {
  if (server.ctx.realtime.publisher.lastSeq === seq) return []
  const rows = await readAfter(server.ctx.db.read, seq, 1e9)
  return rows
    .map((row) => JSON.parse(row.payload))
    .filter(
      (e) => e.type === 'entity_event' && ['created', 'updated', 'deleted'].includes(e.event_type),
    )
}

async function send(
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<void> {
  tried += 1
  const before = server.ctx.realtime.publisher.lastSeq
  const init: RequestInit = { method, headers: { ...admin, ...headers } }
  if (body !== undefined && !['GET', 'HEAD', 'TRACE'].includes(method)) init.body = body
  let res: Response
  try {
    res = await fetch(`${server.base}${path}`, init)
  } catch (error) {
    failures.push(`${method} ${path.slice(0, 80)}: no answer (${String(error).slice(0, 80)})`)
    return
  }
  const text = await res.text()
  statuses[res.status] = (statuses[res.status] ?? 0) + 1
  const where = `${method} ${path.slice(0, 80)} ${(body ?? '').slice(0, 80)} → ${res.status}`
  if (res.status >= 500) failures.push(`${where} ${text.slice(0, 200)}`)
  if (res.status >= 400 && method !== 'HEAD') {
    let envelope: { error?: unknown; message?: unknown } = {}
    try {
      envelope = JSON.parse(text)
    } catch {}
    if (typeof envelope.error !== 'string' || typeof envelope.message !== 'string')
      failures.push(`${where}: not the JSON error envelope: ${text.slice(0, 120)}`)
    const changed = await changesSince(before)
    if (changed.length > 0)
      failures.push(`${where}: refused but changed ${JSON.stringify(changed[0]).slice(0, 160)}`)
  }
}

async function routes(): Promise<Route[]> {
  const doc = (await server.api('GET', '/swagger/json')).body
  const out: Route[] = []
  for (const [path, ops] of Object.entries(doc.paths as Record<string, Record<string, any>>)) {
    for (const [method, op] of Object.entries(ops)) {
      if (method === 'ws') continue
      // Logging out would revoke the token every request here carries (test/revocation.test.ts covers it).
      if (path.endsWith('/auth/logout')) continue
      out.push({
        method: method.toUpperCase(),
        path,
        body: op.requestBody?.content?.['application/json']?.schema,
        query: (op.parameters ?? [])
          .filter((p: { in: string }) => p.in === 'query')
          .map((p: { name: string }) => p.name),
      })
    }
  }
  return out
}

/** A valid body for the route with the references pointing at real rows. */
function validBody(route: Route): Json {
  const fix = (value: Json): Json => {
    if (Array.isArray(value)) return value.map(fix)
    if (!value || typeof value !== 'object') return value
    const out: Record<string, Json> = { ...(value as object) }
    for (const key of Object.keys(out)) if (key in refs) out[key] = refs[key]
    return out
  }
  return fix(sample(route.body))
}

/** Where a path template points: an unknown id unless a victim row is allowed (never a sentinel). */
function fill(template: string, id: string) {
  return template.replace(/\{[^}]+\}/g, id)
}

const victimFor = (path: string) => {
  const match = /^\/api\/v1\/(\w+)\//.exec(path)
  return match ? refs[`victim_${match[1]}`] : undefined
}

beforeAll(async () => {
  server = await startAuthServer({
    AUTH_MODE: 'required',
    BODY_LIMIT_BYTES: '65536',
    WEBSOCKET_MESSAGES_PER_SECOND: '100000',
    WEBSOCKET_MAX_MESSAGE_BYTES: '65536',
  })
  admin = bearer(await adminToken(server))
  const post = async (path: string, body: Json) => {
    const res = await server.api('POST', path, body, admin)
    if (res.status !== 201) throw new Error(`${path}: ${JSON.stringify(res.body)}`)
    return res.body.id as number
  }
  // Ids 1-3 of every table are burnt first, so fuzzed ids like "1" or "1e0" never hit a real row.
  for (let i = 0; i < 3; i++) {
    const loc = await post('/api/v1/locations', { nombre: 'burn' })
    const sen = await post('/api/v1/sensors', { tipo: 't', modelo: 'm' })
    const rea = await post('/api/v1/readings', { sensor_id: sen, temperatura: 1 })
    const ano = await post('/api/v1/anomalies', { sensor_id: sen, variable: 'humedad', value: 1 })
    const pre = await post('/api/v1/predictions', {
      sensor_id: sen,
      variable: 'humedad',
      horizon_minutes: 5,
    })
    for (const [kind, id] of [
      ['anomalies', ano],
      ['predictions', pre],
      ['readings', rea],
      ['sensors', sen],
      ['locations', loc],
    ] as const)
      await server.api('DELETE', `/api/v1/${kind}/${id}`, undefined, admin)
  }
  refs.location_id = await post('/api/v1/locations', {
    nombre: 'Sala fuzz',
    latitud: 40,
    longitud: -3,
  })
  refs.sensor_id = await post('/api/v1/sensors', {
    tipo: 'temperatura',
    modelo: 'DHT22',
    location_id: refs.location_id,
  })
  refs.reading_id = await post('/api/v1/readings', {
    sensor_id: refs.sensor_id,
    temperatura: 21.5,
    humedad: 40,
  })
  const anomaly = await post('/api/v1/anomalies', {
    sensor_id: refs.sensor_id,
    variable: 'temperatura',
    value: 80,
    severity: 'major',
  })
  const prediction = await post('/api/v1/predictions', {
    sensor_id: refs.sensor_id,
    variable: 'temperatura',
    horizon_minutes: 30,
  })
  const user = await post('/api/v1/users', {
    username: 'sentinel',
    password: 'sentinel-password',
    role: 'operator',
    channels: ['sensors:*'],
  })
  // Victims may be changed by valid fuzzed PUT/PATCH bodies; sentinels must come out exactly as they went in.
  refs.victim_locations = await post('/api/v1/locations', { nombre: 'victim' })
  refs.victim_sensors = await post('/api/v1/sensors', { tipo: 'v', modelo: 'v' })
  refs.victim_readings = await post('/api/v1/readings', {
    sensor_id: refs.victim_sensors,
    temperatura: 1,
  })
  refs.victim_anomalies = await post('/api/v1/anomalies', {
    sensor_id: refs.victim_sensors,
    variable: 'humedad',
    value: 1,
  })
  refs.victim_predictions = await post('/api/v1/predictions', {
    sensor_id: refs.victim_sensors,
    variable: 'humedad',
    horizon_minutes: 5,
  })
  refs.victim_users = await post('/api/v1/users', {
    username: 'victim',
    password: 'victim-password',
  })
  const paths = [
    `/api/v1/locations/${refs.location_id}`,
    `/api/v1/sensors/${refs.sensor_id}`,
    `/api/v1/readings/${refs.reading_id}`,
    `/api/v1/anomalies/${anomaly}`,
    `/api/v1/predictions/${prediction}`,
    `/api/v1/users/${user}`,
  ]
  // The forecaster settles each prediction right after its POST; the snapshot is taken once it has.
  await server.ctx.intelligence.jobs.idle()
  for (const path of paths)
    sentinels.push([path, (await server.api('GET', path, undefined, admin)).body])
}, 60_000)

afterAll(() => server.stop())

describe('fuzzing', () => {
  beforeEach(() => {
    failures = []
  })

  test('thousands of hostile REST requests to every route get 4xx envelopes or success, never a 5xx, and refused ones change nothing', async () => {
    const all = await routes()
    expect(all.length).toBeGreaterThan(25)
    const start = tried
    for (const route of all) {
      const { method } = route
      const hasId = route.path.includes('{')
      const targets = hasId
        ? [
            ...ID_VALUES.map((id) => fill(route.path, id)),
            ...(victimFor(route.path) && method !== 'DELETE'
              ? [fill(route.path, String(victimFor(route.path)))]
              : []),
          ]
        : [route.path]

      for (const target of targets)
        await send(method, target, method === 'GET' ? undefined : JSON.stringify(validBody(route)))

      // Query strings: each parameter with each hostile value, plus hostile extras.
      const base = hasId ? fill(route.path, String(victimFor(route.path) ?? 99999999)) : route.path
      for (const name of route.query)
        for (const value of QUERY_VALUES)
          await send(
            method,
            `${base}?${name}=${value}`,
            method === 'GET' ? undefined : JSON.stringify(validBody(route)),
          )
      for (const extra of QUERY_EXTRAS) await send(method, `${base}?${extra}`)

      if (method === 'GET' || method === 'DELETE') continue
      const target = base
      // Raw, broken and oversized bodies.
      for (const raw of RAW_BODIES)
        await send(method, target, raw, { 'content-type': 'application/json' })
      await send(method, target, 'z'.repeat(70_000), { 'content-type': 'application/json' })
      // Wrong content types around a valid body.
      const valid = JSON.stringify(validBody(route))
      for (const type of CONTENT_TYPES)
        await send(method, target, valid, type ? { 'content-type': type } : {})
      await send(method, target, 'tipo=a&modelo=b&__proto__[admin]=1&constructor[prototype][x]=1', {
        'content-type': 'application/x-www-form-urlencoded',
      })
      // One field at a time replaced by each hostile value; prototype keys added beside valid fields.
      const template = validBody(route)
      const objects = Array.isArray(template) ? [template[0]] : [template]
      for (const object of objects) {
        if (!object || typeof object !== 'object') continue
        for (const key of Object.keys(object as object)) {
          for (const value of HOSTILE_VALUES) {
            const mutated = { ...(object as object), [key]: value }
            await send(
              method,
              target,
              JSON.stringify(Array.isArray(template) ? [mutated] : mutated),
              { 'content-type': 'application/json' },
            )
          }
        }
        for (const key of PROTO_KEYS)
          await send(
            method,
            target,
            `{${JSON.stringify(key)}:{"admin":true},${JSON.stringify(object).slice(1)}`,
            { 'content-type': 'application/json' },
          )
      }
    }
    // Hostile Authorization headers on a read and a write.
    for (const authorization of JUNK_AUTH) {
      await send('GET', '/api/v1/sensors', undefined, { authorization })
      await send('POST', '/api/v1/sensors', '{"tipo":"a","modelo":"b"}', {
        authorization,
        'content-type': 'application/json',
      })
    }
    // Unknown routes and methods.
    for (const path of [
      '/api/v1/nope',
      '/api/v2/sensors',
      '/api/v1/sensors/1/readings',
      '/%2e%2e/etc/passwd',
      '/api/v1/users/1/../1',
    ])
      for (const method of ['GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'])
        await send(method, path, method === 'GET' ? undefined : '{}', {
          'content-type': 'application/json',
        })

    const count = tried - start
    console.log(
      `fuzz: ${count} REST inputs tried over ${all.length} routes; statuses ${JSON.stringify(statuses)}`,
    )
    expect(failures).toEqual([])
    expect(count).toBeGreaterThan(2000)
  }, 300_000)

  test('hostile WebSocket handshakes close with 4400/4401/4403 or connect, never anything else', async () => {
    const token = admin.authorization!.slice(7)
    const values = [
      '',
      'nope',
      'general,',
      ',,,',
      'sensors:0',
      'sensors:-1',
      'sensors:1e3',
      `sensors:${'9'.repeat(30)}`,
      'x'.repeat(5000),
      ...SQL,
      ...UNICODE.filter((u) => !u.includes('\ud800')),
      ...PROTO_KEYS,
      'general,nope',
    ]
    const queries: Record<string, string>[] = [
      ...values.map((channel) => ({ channel, token })),
      ...['-1', 'abc', '1e999', '99999999999999999999', '0x10', '', '1.5'].map((since) => ({
        since,
        token,
      })),
      ...['', 'x', ...SQL].map((epoch) => ({ since: '0', epoch, token })),
      ...['', 'x'.repeat(500), ...SQL, ...UNICODE.slice(0, 3)].map((user_id) => ({
        user_id,
        token,
      })),
      ...JUNK_AUTH.map((auth) => ({ token: auth.slice(7) })),
    ]
    let handshakes = 0
    for (const path of ['/api/v1/ws', '/api/v1/ws/secure']) {
      for (const query of queries) {
        handshakes += 1
        tried += 1
        let client: WsClient
        try {
          client = await server.ws(path, query)
        } catch (error) {
          failures.push(
            `${path} ${JSON.stringify(query).slice(0, 100)}: handshake failed ${String(error)}`,
          )
          continue
        }
        const outcome = await Promise.race([
          client.connected().then(() => 'connected'),
          client.closed.then((c) => c.code),
        ])
        if (outcome === 'connected') await client.close()
        else if (![4400, 4401, 4403].includes(outcome as number))
          failures.push(`${path} ${JSON.stringify(query).slice(0, 100)}: closed ${outcome}`)
      }
    }
    console.log(`fuzz: ${handshakes} WebSocket handshakes tried`)
    expect(failures).toEqual([])
  }, 120_000)

  test('hostile WebSocket messages each get one answer and never close the socket', async () => {
    const token = admin.authorization!.slice(7)
    const client = await server.ws('/api/v1/ws/secure', { token, channel: 'sensors' })
    await client.connected()
    const frames: (string | Uint8Array)[] = []
    const values = [
      ...HOSTILE_VALUES.filter((v) => typeof v !== 'string' || v.length < 10_000),
      'x'.repeat(30_000),
      undefined,
    ]
    for (const action of ['subscribe', 'unsubscribe', 'refresh', 'ping', ...values]) {
      frames.push(JSON.stringify({ action }))
      for (const value of values) {
        frames.push(JSON.stringify({ action, channel: value }))
        frames.push(JSON.stringify({ action, token: value }))
      }
      for (const key of PROTO_KEYS)
        frames.push(
          `{${JSON.stringify(key)}:{"action":"ping"},"action":${JSON.stringify(action ?? null)}}`,
        )
    }
    frames.push(...RAW_BODIES.filter((b) => b.length < 60_000), 'plain text', ' ', '\u0000')
    frames.push(
      new Uint8Array([0, 1, 2, 255]),
      new TextEncoder().encode('{"action":"ping"}'),
      new Uint8Array(0),
    )
    for (const frame of frames) {
      tried += 1
      client.socket.send(frame)
    }
    const answered = async () => {
      const deadline = Date.now() + 30_000
      while (client.messages.length < frames.length + 1 && Date.now() < deadline)
        await client.next(() => false, 50).catch(() => undefined)
    }
    await answered()
    const replies = client.messages.slice(1)
    expect(replies.length).toBe(frames.length)
    expect(replies.filter((m) => !['error', 'pong', 'connection'].includes(m.type))).toEqual([])
    client.send({ action: 'ping' })
    await client.next((m) => m.type === 'pong')

    // A frame over WEBSOCKET_MAX_MESSAGE_BYTES closes that socket with 1009, and only that one.
    const big = await server.ws('/api/v1/ws', { token })
    await big.connected()
    big.socket.send('x'.repeat(70_000))
    expect((await big.closed).code).toBe(1009)
    client.send({ action: 'ping' })
    await client.next((m) => m.type === 'pong')
    await client.close()
    console.log(`fuzz: ${frames.length} WebSocket messages tried`)
  }, 120_000)

  test('after all of it the server is healthy and the data that was there is unchanged', async () => {
    expect((await server.api('GET', '/health')).status).toBe(200)
    // A sensor's liveness (status, last_seen) follows the readings stored for it, which fuzzed valid
    // readings may be; everything else about it must come out as it went in.
    const own = (body: unknown) => {
      if (!body || typeof body !== 'object' || !('last_seen' in body)) return body
      const { last_seen: _, status: __, ...rest } = body as Record<string, unknown>
      return rest
    }
    for (const [path, before] of sentinels)
      expect(own((await server.api('GET', path, undefined, admin)).body)).toEqual(own(before))
    const me = await server.api('GET', '/api/v1/auth/me', undefined, admin)
    expect(me.body).toMatchObject({ username: 'admin', role: 'admin' })
    expect(({} as Record<string, unknown>).admin).toBeUndefined()
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    expect(failures).toEqual([])
    console.log(`fuzz: ${tried} inputs tried in all`)
  })

  test('hostile text that is valid is stored and read back verbatim', async () => {
    for (const text of [...SQL, ...UNICODE.filter((u) => !/[\u0000-\u001f]|\ud800/.test(u))]) {
      const res = await server.api(
        'POST',
        '/api/v1/sensors',
        { tipo: 'temperatura', modelo: text },
        admin,
      )
      expect(res.status).toBe(201)
      expect(
        (await server.api('GET', `/api/v1/sensors/${res.body.id}`, undefined, admin)).body.modelo,
      ).toBe(text)
    }
  })
})
