// The OpenAPI document of a real server passes the tools people point at it (redocly, spectral,
// swagger-parser, ajv), and every status and header the server answers with is documented on its operation.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { ADMIN, bearer, mintToken, startAuthServer } from './auth-kit'
import type { TestServer } from './helpers'
import {
  errorsOf,
  openApiAjv,
  redoclyLint,
  sample,
  schemasOf,
  spectralLint,
  swaggerParserValidate,
  walkSchema,
} from './standards-kit'

setDefaultTimeout(30_000)

type Json = Record<string, any>

let required: TestServer
let open: TestServer
let docs: { required: Json; open: Json }

beforeAll(async () => {
  ;[required, open] = await Promise.all([
    startAuthServer({ AUTH_MODE: 'required', BODY_LIMIT_BYTES: '65536' }),
    startAuthServer({ AUTH_MODE: 'open' }),
  ])
  docs = {
    required: (await required.api('GET', '/swagger/json')).body,
    open: (await open.api('GET', '/swagger/json')).body,
  }
})
afterAll(() => Promise.all([required?.stop(), open?.stop()]))

const MODES = ['required', 'open'] as const
const operations = (doc: Json) =>
  Object.entries<Json>(doc.paths).flatMap(([path, item]) =>
    Object.entries<Json>(item).map(([method, op]) => ({ path, method, op })),
  )

describe('the OpenAPI document passes third-party tools', () => {
  for (const mode of MODES) {
    test(`redocly lint (recommended rules) finds no error under AUTH_MODE=${mode}`, async () => {
      expect(errorsOf(await redoclyLint(docs[mode]))).toEqual([])
    })

    test(`spectral lint (spectral:oas) finds no error under AUTH_MODE=${mode}`, async () => {
      expect(errorsOf(await spectralLint(docs[mode]))).toEqual([])
    })

    test(`swagger-parser validates it under AUTH_MODE=${mode}`, async () => {
      await swaggerParserValidate(docs[mode])
    })
  }

  test('ajv (JSON Schema 2020-12, strict) compiles every schema, and every example and default validates against its schema', () => {
    const ajv = openApiAjv()
    const compiled = new Map<string, ReturnType<typeof ajv.compile>>()
    const compile = (schema: Json) => {
      const key = JSON.stringify(schema)
      let check = compiled.get(key)
      if (!check) compiled.set(key, (check = ajv.compile(schema)))
      return check
    }
    const failures: string[] = []
    let examples = 0
    for (const [where, schema] of schemasOf(docs.required)) {
      try {
        compile(schema)
      } catch (error) {
        failures.push(`${where}: ${String(error).slice(0, 200)}`)
        continue
      }
      walkSchema(schema, where, (node, at) => {
        const { examples: given, default: fallback, ...rest } = node
        const check = compile(rest)
        const values = [
          ...(Array.isArray(given) ? given : []),
          ...('default' in node ? [fallback] : []),
        ]
        for (const value of values) {
          examples++
          if (!check(value))
            failures.push(`${at}: ${JSON.stringify(value)} ${ajv.errorsText(check.errors)}`)
        }
      })
    }
    expect(failures).toEqual([])
    expect(examples).toBeGreaterThan(100)
  })
})

describe('the OpenAPI document says what the server does', () => {
  test('uses OpenAPI 3.1 forms only: no nullable, no numeric-string formats, no trailing slashes, HTTP methods only, no bodiless content', () => {
    const text = JSON.stringify(docs.required)
    expect(docs.required.openapi).toMatch(/^3\.1\./)
    expect(text).not.toContain('"nullable"')
    expect(text).not.toMatch(/"format":"(integer|numeric)"/)
    for (const path of Object.keys(docs.required.paths)) expect(path).not.toMatch(/.\/$/)
    for (const { path, method, op } of operations(docs.required)) {
      expect(['get', 'put', 'post', 'delete', 'patch', 'head', 'options']).toContain(method)
      for (const [status, response] of Object.entries<Json>(op.responses))
        for (const type of Object.keys(response.content ?? {}))
          expect({ at: `${method} ${path} ${status}`, type }).toEqual({
            at: `${method} ${path} ${status}`,
            type: expect.stringContaining('/'),
          })
    }
  })

  test('every operation has a summary, a description and a security requirement; every response a description of its own', () => {
    const missing: string[] = []
    for (const { path, method, op } of operations(docs.required)) {
      const at = `${method.toUpperCase()} ${path}`
      if (!op.summary) missing.push(`${at}: summary`)
      if (!op.description || /^Needs a bearer token/.test(op.description))
        missing.push(`${at}: description`)
      if (!Array.isArray(op.security)) missing.push(`${at}: security`)
      for (const [status, response] of Object.entries<Json>(op.responses))
        if (!response.description || /^Response for status/.test(response.description))
          missing.push(`${at} ${status}: description`)
    }
    expect(missing).toEqual([])
  })

  test('each error response has an example of its own status: 401 unauthorized, 404 not_found, 422 validation_error, …', () => {
    const expected: Record<string, string[]> = {
      '400': ['invalid_body'],
      '401': ['unauthorized', 'invalid_credentials'],
      '403': ['forbidden'],
      '404': ['not_found'],
      '405': ['method_not_allowed'],
      '408': ['body_timeout'],
      '409': ['conflict'],
      '411': ['length_required'],
      '413': ['payload_too_large'],
      '415': ['unsupported_media_type'],
      '422': ['validation_error', 'too_many_rows'],
      '426': ['upgrade_required'],
      '429': ['too_many_requests', 'too_many_attempts'],
      '503': ['database_unavailable', 'unavailable'],
    }
    const wrong: string[] = []
    let seen = 0
    for (const { path, method, op } of operations(docs.required))
      for (const [status, response] of Object.entries<Json>(op.responses)) {
        if (Number(status) < 400 || path === '/health') continue
        const example = response.content?.['application/json']?.schema?.examples?.[0]
        seen++
        if (!expected[status]?.includes(example?.error))
          wrong.push(`${method} ${path} ${status}: ${JSON.stringify(example)}`)
      }
    expect(wrong).toEqual([])
    expect(seen).toBeGreaterThan(200)
  })

  test('declares the bearer scheme, on the user routes in every AUTH_MODE and on writes under AUTH_MODE=required', () => {
    for (const mode of MODES)
      expect(docs[mode].components.securitySchemes.bearerAuth).toMatchObject({
        type: 'http',
        scheme: 'bearer',
      })
    const security = (mode: (typeof MODES)[number], method: string, path: string) =>
      docs[mode].paths[path][method].security
    const locked = [{ bearerAuth: [] }]
    expect(security('open', 'get', '/api/v1/users')).toEqual(locked)
    expect(security('open', 'get', '/api/v1/auth/me')).toEqual(locked)
    expect(security('open', 'post', '/api/v1/sensors')).toEqual([])
    expect(security('required', 'post', '/api/v1/sensors')).toEqual(locked)
    expect(docs.required.paths['/api/v1/sensors'].post['x-roles']).toEqual(['admin', 'operator'])
    expect(security('required', 'get', '/api/v1/sensors')).toEqual([])
    expect(security('required', 'get', '/api/v1/ws/stats')).toEqual(locked)
    expect(security('required', 'post', '/auth/login')).toEqual([])
    expect(Object.keys(docs.open.paths['/api/v1/sensors'].post.responses)).not.toContain('401')
    expect(Object.keys(docs.required.paths['/api/v1/sensors'].post.responses)).toEqual(
      expect.arrayContaining(['401', '403']),
    )
  })

  test('documents X-Total-Count on list answers, WWW-Authenticate on 401, Retry-After on 429 and 503', () => {
    const sensors = docs.required.paths['/api/v1/sensors']
    expect(Object.keys(sensors.get.responses['200'].headers)).toContain('X-Total-Count')
    expect(Object.keys(sensors.post.responses['401'].headers)).toContain('WWW-Authenticate')
    expect(Object.keys(sensors.post.responses['503'].headers)).toContain('Retry-After')
    expect(Object.keys(docs.required.paths['/auth/login'].post.responses['429'].headers)).toContain(
      'Retry-After',
    )
  })
})

describe('every answer the server gives is documented', () => {
  test('probing each operation (valid, no token, viewer token, unknown and malformed ids, broken, chunked, oversized and non-JSON bodies) gets only documented statuses, headers and bodies', async () => {
    const server = required
    const doc = docs.required
    const ajv = openApiAjv()
    // Fresh tokens for each operation: a probe of POST /auth/logout revokes the token it sends.
    let admin: Record<string, string> = {}
    let viewer: Record<string, string> = {}
    const freshTokens = async () => {
      admin = bearer(
        await mintToken(server, { username: ADMIN.username, role: 'admin', channels: ['*'] }),
      )
      viewer = bearer(
        await mintToken(server, { username: 'probe-viewer', role: 'viewer', channels: ['*'] }),
      )
    }
    await freshTokens()
    const post = async (path: string, body: unknown) => {
      const res = await server.api('POST', path, body, admin)
      if (res.status !== 201) throw new Error(`${path}: ${JSON.stringify(res.body)}`)
      return res.body.id as number
    }
    const location = await post('/api/v1/locations', { nombre: 'Sala de sondas' })
    const sensor = await post('/api/v1/sensors', { tipo: 'temperatura', modelo: 'DHT22' })
    await server.api(
      'PUT',
      '/api/v1/sensor-types/temperatura/thresholds',
      { temperatura: { max: 40 } },
      admin,
    )
    const refs: Record<string, number> = { sensor_id: sensor, location_id: location }
    /** A row of the collection that a path's `{id}` may change or delete. */
    const victim = async (path: string) => {
      const collection = path.replace(/\/\{id\}.*$/, '')
      const body = {
        '/api/v1/locations': { nombre: 'victima' },
        '/api/v1/sensors': { tipo: 'victima', modelo: 'v' },
        '/api/v1/readings': { sensor_id: sensor, temperatura: 20 },
        '/api/v1/anomalies': { sensor_id: sensor, variable: 'temperatura', value: 1 },
        '/api/v1/predictions': { sensor_id: sensor, variable: 'temperatura', horizon_minutes: 5 },
        '/api/v1/users': {
          username: `victim${crypto.randomUUID().slice(0, 6)}`,
          password: 'victim-password',
        },
      }[collection]
      return body ? String(await post(collection, body)) : '1'
    }
    const fill = (path: string, id: string) =>
      path
        .replace('{id}', id)
        .replace('{channel}', 'general')
        .replace('{tipo}', id === '1' ? 'temperatura' : id)
        .replace('{name}', id === '1' ? 'co2' : id)
        .replace('{keyId}', id)
    const withRefs = (value: unknown): unknown => {
      if (Array.isArray(value)) return value.map(withRefs)
      if (!value || typeof value !== 'object') return value
      const out: Json = { ...value }
      for (const key of Object.keys(out)) if (key in refs) out[key] = refs[key]
      if ('username' in out) out.username = `u${crypto.randomUUID().slice(0, 8)}`
      return out
    }

    const VALID_QUERIES: Record<string, string> = {
      '/api/v1/readings/aggregate': `?sensor_id=${refs.sensor_id}&variable=temperatura&from=2025-07-20T00:00:00Z&to=2025-07-21T00:00:00Z&bucket=1h`,
    }
    const failures: string[] = []
    const statuses = new Set<string>()
    let succeeded = 0
    const check = async (
      at: string,
      op: Json,
      method: string,
      url: string,
      init: { body?: BodyInit; headers?: Record<string, string> },
    ) => {
      const res = await fetch(`${server.base}${url}`, {
        method: method.toUpperCase(),
        body: init.body,
        headers: init.headers,
      })
      const text = await res.text()
      const status = String(res.status)
      if (at.endsWith('as admin') && res.ok) succeeded++
      statuses.add(status)
      const documented = op.responses[status]
      if (!documented) {
        failures.push(`${at} → ${status} undocumented: ${text.slice(0, 160)}`)
        return
      }
      for (const header of ['x-total-count', 'retry-after', 'www-authenticate', 'allow'])
        if (
          res.headers.has(header) &&
          !Object.keys(documented.headers ?? {}).some((name) => name.toLowerCase() === header)
        )
          failures.push(`${at} → ${status}: header ${header} undocumented`)
      const schema = documented.content?.['application/json']?.schema
      if (!schema || method === 'head') return
      const valid = ajv.compile(schema)
      if (!valid(text ? JSON.parse(text) : undefined))
        failures.push(`${at} → ${status}: body breaks its schema: ${ajv.errorsText(valid.errors)}`)
    }

    const all = operations(doc).sort(
      (a, b) => Number(a.method === 'delete') - Number(b.method === 'delete'),
    )
    for (const { path, method, op } of all) {
      await freshTokens()
      const mediaTypes = Object.keys(op.requestBody?.content ?? {})
      const json = JSON.stringify(
        withRefs(sample(op.requestBody?.content?.[mediaTypes[0] ?? '']?.schema)),
      )
      const body = op.requestBody ? json : undefined
      const type: Record<string, string> = op.requestBody
        ? { 'content-type': 'application/json' }
        : {}
      const id = path.includes('{id}') ? await victim(path) : '1'
      let target = fill(path, id)
      if (path.includes('{keyId}')) {
        // A key of the victim sensor, so the valid request revokes a key that exists.
        const res = await fetch(`${server.base}${fill(path.replace(/\/\{keyId\}$/, ''), id)}`, {
          method: 'POST',
          body: '{}',
          headers: { ...admin, 'content-type': 'application/json' },
        })
        const key = ((await res.json()) as { id: number }).id
        target = fill(path.replace('{keyId}', String(key)), id)
      }
      const at = `${method.toUpperCase()} ${path}`
      // Operations whose query has required fields get a valid one in the admin probe.
      target += VALID_QUERIES[path] ?? ''
      await check(`${at} as admin`, op, method, target, { body, headers: { ...admin, ...type } })
      await check(`${at} without a token`, op, method, fill(path, '1'), { body, headers: type })
      await check(`${at} as a viewer`, op, method, fill(path, '1'), {
        body,
        headers: { ...viewer, ...type },
      })
      if (path.includes('{')) {
        await check(`${at} unknown id`, op, method, fill(path, '987654'), {
          body,
          headers: { ...admin, ...type },
        })
        await check(`${at} malformed id`, op, method, fill(path, 'x%20y'), {
          body,
          headers: { ...admin, ...type },
        })
      }
      if (!op.requestBody) continue
      const where = fill(path, '1')
      await check(`${at} broken JSON`, op, method, where, {
        body: '{"oops',
        headers: { ...admin, ...type },
      })
      await check(`${at} non-JSON type`, op, method, where, {
        body,
        headers: { ...admin, 'content-type': 'text/plain' },
      })
      await check(`${at} oversized`, op, method, where, {
        body: `[${'0,'.repeat(40_000)}0]`,
        headers: { ...admin, ...type },
      })
      await check(`${at} chunked`, op, method, where, {
        body: new ReadableStream({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(body))
            controller.close()
          },
        }),
        headers: { ...admin, ...type },
      })
    }
    expect(failures).toEqual([])
    // The valid request of nearly every operation succeeds, so their success bodies were checked too.
    expect(succeeded).toBeGreaterThan(all.length - 8)
    expect([...statuses]).toEqual(
      expect.arrayContaining([
        '200',
        '201',
        '204',
        '401',
        '403',
        '404',
        '405',
        '411',
        '413',
        '422',
        '426',
      ]),
    )
  }, 120_000)
})
