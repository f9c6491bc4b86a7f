// Users, login and the REST guard: who gets a token, and what each role may do with it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { startServer } from '../src/server'
import { loadConfig } from '../src/config'
import { startTestServer, tempDir, type TestServer } from './helpers'
import {
  ADMIN,
  adminToken,
  bearer,
  capturingLogger,
  claimsOf,
  login,
  mintToken,
  startAuthServer,
  userToken,
} from './auth-kit'

// bunfig's [test] timeout is not read by Bun 1.4.5; argon2 hashing and real servers need more than 5 s under load.
setDefaultTimeout(30_000)

const form = (fields: Record<string, string>) => ({
  body: new URLSearchParams(fields).toString(),
  headers: { 'content-type': 'application/x-www-form-urlencoded' },
})

describe('the first user', () => {
  test('comes from ADMIN_USERNAME and ADMIN_PASSWORD when no user exists', async () => {
    const server = await startTestServer({
      ADMIN_USERNAME: 'root',
      ADMIN_PASSWORD: 'root-password-1',
    })
    try {
      const token = await login(server, 'root', 'root-password-1')
      expect(claimsOf(token)).toMatchObject({ sub: 'root', role: 'admin', channels: ['*'] })
    } finally {
      await server.stop()
    }
  })

  test('without ADMIN_PASSWORD gets a random password that is logged once and works', async () => {
    const first = capturingLogger()
    const server = await startTestServer({}, { log: first.log })
    const logged = first.lines.filter((line) => line.includes('generated password'))
    expect(logged).toHaveLength(1)
    const password = /generated password (\S+) /.exec(logged[0]!)![1]!
    expect(password.length).toBeGreaterThanOrEqual(20)
    expect(claimsOf(await login(server, 'admin', password)).role).toBe('admin')
    await server.stop(true)

    const second = capturingLogger()
    const again = await startTestServer({}, { log: second.log, dir: server.dir })
    try {
      expect(second.text()).not.toContain(password)
      expect(second.text()).not.toContain('generated password')
      expect(claimsOf(await login(again, 'admin', password)).sub).toBe('admin')
    } finally {
      await again.stop()
    }
  })

  test('is not recreated from ADMIN_PASSWORD once users exist', async () => {
    const server = await startTestServer({ ADMIN_PASSWORD: 'first-password' })
    await server.stop(true)
    const again = await startTestServer({ ADMIN_PASSWORD: 'other-password' }, { dir: server.dir })
    try {
      const res = await again.api('POST', '/auth/login', {
        username: 'admin',
        password: 'other-password',
      })
      expect(res.status).toBe(401)
      await login(again, 'admin', 'first-password')
    } finally {
      await again.stop()
    }
  })
})

describe('logging in', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startAuthServer({ JWT_EXPIRES_IN: '900' })
  })
  afterAll(() => server.stop())

  test('with JSON on /auth/login and /api/v1/auth/login answers a bearer token with sub, role, channels and exp', async () => {
    for (const path of ['/auth/login', '/api/v1/auth/login']) {
      const before = Math.floor(Date.now() / 1000)
      const res = await server.api('POST', path, ADMIN)
      expect(res.status).toBe(200)
      expect(res.body).toEqual({
        access_token: expect.any(String),
        token_type: 'bearer',
        expires_in: 900,
      })
      const header = JSON.parse(
        Buffer.from(res.body.access_token.split('.')[0], 'base64url').toString(),
      )
      expect(header.alg).toBe('HS256')
      const claims = claimsOf(res.body.access_token)
      expect(claims).toMatchObject({ sub: 'admin', role: 'admin', channels: ['*'] })
      expect(claims.exp).toBeGreaterThanOrEqual(before + 900)
      expect(claims.exp).toBeLessThanOrEqual(Math.ceil(Date.now() / 1000) + 900)
    }
  })

  test('with the OAuth2 password-flow form works, extra form fields ignored', async () => {
    const { body, headers } = form({
      grant_type: 'password',
      username: ADMIN.username,
      password: ADMIN.password,
      scope: '',
      client_id: 'dashboard',
    })
    const res = await server.api('POST', '/api/v1/auth/login', body, headers)
    expect(res.status).toBe(200)
    expect(res.body.token_type).toBe('bearer')
    const me = await server.api('GET', '/api/v1/auth/me', undefined, bearer(res.body.access_token))
    expect(me.body).toMatchObject({ username: 'admin', role: 'admin', channels: ['*'] })
  })

  test('with another grant_type is refused with 422', async () => {
    const { body, headers } = form({ grant_type: 'client_credentials', ...ADMIN })
    const res = await server.api('POST', '/auth/login', body, headers)
    expect(res.status).toBe(422)
    expect(res.body.field).toBe('grant_type')
  })

  test('with a wrong password or an unknown user answers the same 401', async () => {
    const wrong = await server.api('POST', '/auth/login', {
      username: 'admin',
      password: 'nope-nope',
    })
    const unknown = await server.api('POST', '/auth/login', {
      username: 'ghost',
      password: 'nope-nope',
    })
    for (const res of [wrong, unknown]) {
      expect(res.status).toBe(401)
      expect(res.body).toEqual({
        error: 'invalid_credentials',
        message: 'Wrong username or password.',
      })
    }
  })

  test('without username or password is a 422 naming the field', async () => {
    const res = await server.api('POST', '/auth/login', { username: 'admin' })
    expect(res.status).toBe(422)
    expect(res.body.field).toBe('password')
  })
})

describe('login attempts', () => {
  test('past LOGIN_MAX_ATTEMPTS_PER_USER for one user from one address get 429 with Retry-After, even with the right password', async () => {
    const server = await startAuthServer({
      LOGIN_MAX_ATTEMPTS_PER_USER: '3',
      LOGIN_MAX_ATTEMPTS_PER_IP: '100',
      LOGIN_WINDOW_SECONDS: '120',
    })
    try {
      for (let i = 0; i < 3; i++)
        expect(
          (await server.api('POST', '/auth/login', { username: 'admin', password: 'wrong-pass' }))
            .status,
        ).toBe(401)
      const blocked = await server.api('POST', '/auth/login', ADMIN)
      expect(blocked.status).toBe(429)
      expect(blocked.body.error).toBe('too_many_attempts')
      const retry = Number(blocked.headers.get('retry-after'))
      expect(retry).toBeGreaterThan(0)
      expect(retry).toBeLessThanOrEqual(120)
      // Another user from the same address is not blocked.
      const other = await server.api('POST', '/auth/login', { username: 'someone', password: 'x' })
      expect(other.status).toBe(401)
    } finally {
      await server.stop()
    }
  })

  test('bad passwords for a user from one address do not lock that user out from another address', async () => {
    const server = await startAuthServer({
      TRUST_PROXY: 'true',
      LOGIN_MAX_ATTEMPTS_PER_USER: '5',
      LOGIN_MAX_ATTEMPTS_PER_IP: '100',
      LOGIN_WINDOW_SECONDS: '120',
    })
    try {
      const from = (address: string) => ({ 'x-forwarded-for': address })
      const attacker = from('203.0.113.66')
      for (let i = 0; i < 5; i++)
        expect(
          (
            await server.api(
              'POST',
              '/auth/login',
              { username: 'admin', password: 'guess-' + i },
              attacker,
            )
          ).status,
        ).toBe(401)
      // The guesser is throttled, even when it guesses right…
      expect((await server.api('POST', '/auth/login', ADMIN, attacker)).status).toBe(429)
      // …while the real admin, from their own address, logs in.
      const admin = await server.api('POST', '/auth/login', ADMIN, from('198.51.100.7'))
      expect(admin.status).toBe(200)
      expect(admin.body.access_token).toBeString()
    } finally {
      await server.stop()
    }
  })

  test('a success clears the count of that user', async () => {
    const server = await startAuthServer({
      LOGIN_MAX_ATTEMPTS_PER_USER: '3',
      LOGIN_MAX_ATTEMPTS_PER_IP: '100',
    })
    try {
      for (let round = 0; round < 3; round++) {
        for (let i = 0; i < 2; i++)
          expect(
            (await server.api('POST', '/auth/login', { username: 'admin', password: 'bad-pass' }))
              .status,
          ).toBe(401)
        await adminToken(server)
      }
    } finally {
      await server.stop()
    }
  })

  test('past LOGIN_MAX_ATTEMPTS_PER_IP from one address get 429 whatever the username', async () => {
    const server = await startAuthServer({
      LOGIN_MAX_ATTEMPTS_PER_IP: '4',
      LOGIN_MAX_ATTEMPTS_PER_USER: '100',
    })
    try {
      for (let i = 0; i < 4; i++)
        expect(
          (await server.api('POST', '/auth/login', { username: `u${i}`, password: 'whatever' }))
            .status,
        ).toBe(401)
      const res = await server.api('POST', '/auth/login', ADMIN)
      expect(res.status).toBe(429)
      expect(res.headers.get('retry-after')).toMatch(/^\d+$/)
      // A forged X-Forwarded-For does not help while TRUST_PROXY is off.
      const forged = await server.api('POST', '/auth/login', ADMIN, {
        'x-forwarded-for': '203.0.113.9',
      })
      expect(forged.status).toBe(429)
    } finally {
      await server.stop()
    }
  })

  test('behind a proxy (TRUST_PROXY=true) are counted per forwarded address', async () => {
    const server = await startAuthServer({
      TRUST_PROXY: 'true',
      LOGIN_MAX_ATTEMPTS_PER_IP: '2',
      LOGIN_MAX_ATTEMPTS_PER_USER: '100',
    })
    try {
      const from = (address: string) => ({ 'x-forwarded-for': `10.9.9.9, ${address}` })
      for (let i = 0; i < 2; i++)
        expect(
          (
            await server.api(
              'POST',
              '/auth/login',
              { username: 'x', password: 'y' },
              from('198.51.100.1'),
            )
          ).status,
        ).toBe(401)
      expect((await server.api('POST', '/auth/login', ADMIN, from('198.51.100.1'))).status).toBe(
        429,
      )
      expect((await server.api('POST', '/auth/login', ADMIN, from('198.51.100.2'))).status).toBe(
        200,
      )
    } finally {
      await server.stop()
    }
  })
})

describe('managing users', () => {
  let server: TestServer
  let admin: Record<string, string>
  beforeAll(async () => {
    server = await startAuthServer()
    admin = bearer(await adminToken(server))
  })
  afterAll(() => server.stop())

  test('an admin creates, lists, reads, changes and deletes users; the password never comes back', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/users',
      {
        username: 'ana',
        password: 'ana-password',
        role: 'operator',
        channels: ['sensors:*', 'general'],
      },
      admin,
    )
    expect(created.status).toBe(201)
    expect(created.body).toEqual({
      id: expect.any(Number),
      username: 'ana',
      role: 'operator',
      channels: ['sensors:*', 'general'],
      created_at: expect.any(String),
      updated_at: expect.any(String),
    })
    const id = created.body.id
    expect(claimsOf(await login(server, 'ana', 'ana-password'))).toMatchObject({
      sub: 'ana',
      role: 'operator',
      channels: ['sensors:*', 'general'],
    })

    const list = await server.api('GET', '/api/v1/users', undefined, admin)
    expect(list.status).toBe(200)
    expect(list.body.map((u: { username: string }) => u.username)).toEqual(['admin', 'ana'])
    expect(list.headers.get('x-total-count')).toBe('2')
    expect(JSON.stringify(list.body)).not.toContain('password')
    const operators = await server.api('GET', '/api/v1/users?role=operator', undefined, admin)
    expect(operators.body.map((u: { username: string }) => u.username)).toEqual(['ana'])
    expect((await server.api('GET', `/api/v1/users/${id}`, undefined, admin)).body.username).toBe(
      'ana',
    )

    const patched = await server.api(
      'PATCH',
      `/api/v1/users/${id}`,
      { password: 'ana-new-password', channels: ['readings:5'] },
      admin,
    )
    expect(patched.status).toBe(200)
    expect(patched.body).toMatchObject({ role: 'operator', channels: ['readings:5'] })
    expect(
      (await server.api('POST', '/auth/login', { username: 'ana', password: 'ana-password' }))
        .status,
    ).toBe(401)
    expect(claimsOf(await login(server, 'ana', 'ana-new-password')).channels).toEqual([
      'readings:5',
    ])

    expect((await server.api('DELETE', `/api/v1/users/${id}`, undefined, admin)).status).toBe(204)
    expect((await server.api('GET', `/api/v1/users/${id}`, undefined, admin)).status).toBe(404)
    expect(
      (await server.api('POST', '/auth/login', { username: 'ana', password: 'ana-new-password' }))
        .status,
    ).toBe(401)
  })

  test('a new user is a viewer of every channel unless told otherwise', async () => {
    const res = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'vic', password: 'vic-password' },
      admin,
    )
    expect(res.body).toMatchObject({ role: 'viewer', channels: ['*'] })
  })

  test('a taken username is a 409 and bad fields are 422 naming them', async () => {
    await server.api('POST', '/api/v1/users', { username: 'dup', password: 'dup-password' }, admin)
    const dup = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'dup', password: 'dup-password' },
      admin,
    )
    expect(dup.status).toBe(409)
    const cases: [unknown, string][] = [
      [{ username: 'x y', password: 'long-enough' }, 'username'],
      [{ username: 'short', password: 'short' }, 'password'],
      [{ username: 'r', password: 'long-enough', role: 'root' }, 'role'],
      [{ username: 'c', password: 'long-enough', channels: ['nope'] }, 'channels[0]'],
      [
        { username: 'c', password: 'long-enough', channels: ['general', 'general:*'] },
        'channels[1]',
      ],
    ]
    for (const [body, field] of cases) {
      const res = await server.api('POST', '/api/v1/users', body, admin)
      expect(res.status).toBe(422)
      expect(res.body).toMatchObject({ error: 'validation_error', field })
    }
    const role = await server.api('POST', '/api/v1/users', cases[2]![0], admin)
    expect(role.body.message).toContain('must be one of: admin, operator, viewer')
  })

  test('a body that is not JSON is a 400 and changes no user', async () => {
    const asForm = (fields: Record<string, string>) => {
      const { body, headers } = form(fields)
      return [body, { ...admin, ...headers }] as const
    }
    const created = await server.api(
      'POST',
      '/api/v1/users',
      ...asForm({ username: 'formulario', password: 'form-password' }),
    )
    expect(created.status).toBe(400)
    expect(created.body.error).toBe('invalid_body')
    const listed = await server.api('GET', '/api/v1/users?limit=1000', undefined, admin)
    expect(listed.body.map((u: { username: string }) => u.username)).not.toContain('formulario')
    const me = listed.body.find((u: { username: string }) => u.username === ADMIN.username)
    const patched = await server.api(
      'PATCH',
      `/api/v1/users/${me.id}`,
      ...asForm({ role: 'viewer' }),
    )
    expect(patched.status).toBe(400)
    expect(patched.body.error).toBe('invalid_body')
    expect((await server.api('GET', `/api/v1/users/${me.id}`, undefined, admin)).body).toEqual(me)
  })

  test('the last admin can be neither demoted nor deleted, but may change its password', async () => {
    const [me] = (await server.api('GET', '/api/v1/users?role=admin', undefined, admin)).body
    const password = { password: ADMIN.password }
    expect((await server.api('PATCH', `/api/v1/users/${me.id}`, password, admin)).status).toBe(200)
    // A password change revokes the user's tokens, this one included: log in again.
    expect((await server.api('GET', '/api/v1/users', undefined, admin)).status).toBe(401)
    admin = bearer(await adminToken(server))
    const demote = await server.api('PATCH', `/api/v1/users/${me.id}`, { role: 'viewer' }, admin)
    expect(demote.status).toBe(409)
    expect((await server.api('DELETE', `/api/v1/users/${me.id}`, undefined, admin)).status).toBe(
      409,
    )
    const second = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'second-admin', password: 'second-password', role: 'admin' },
      admin,
    )
    expect(
      (await server.api('PATCH', `/api/v1/users/${second.body.id}`, { role: 'viewer' }, admin))
        .status,
    ).toBe(200)
  })

  test('PATCH changes only the fields it names', async () => {
    const op = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'keep', password: 'keep-password', role: 'operator', channels: ['sensors'] },
      admin,
    )
    const res = await server.api(
      'PATCH',
      `/api/v1/users/${op.body.id}`,
      { username: 'kept' },
      admin,
    )
    expect(res.body).toMatchObject({ username: 'kept', role: 'operator', channels: ['sensors'] })
  })

  test('need an admin token in open mode too: none 401, operator or viewer 403', async () => {
    const operator = bearer(await userToken(server, { username: 'op1', role: 'operator' }))
    const viewer = bearer(await userToken(server, { username: 'view1', role: 'viewer' }))
    const calls: [string, string, unknown?][] = [
      ['GET', '/api/v1/users'],
      ['GET', '/api/v1/users/1'],
      ['POST', '/api/v1/users', { username: 'evil', password: 'evil-password', role: 'admin' }],
      ['PATCH', '/api/v1/users/1', { password: 'hijacked-password' }],
      ['DELETE', '/api/v1/users/1'],
    ]
    for (const [method, path, body] of calls) {
      const none = await server.api(method, path, body)
      expect(none.status).toBe(401)
      expect(none.body.error).toBe('unauthorized')
      expect(none.headers.get('www-authenticate')).toBe('Bearer')
      for (const headers of [operator, viewer]) {
        const res = await server.api(method, path, body, headers)
        expect(res.status).toBe(403)
        expect(res.body.error).toBe('forbidden')
      }
    }
    // Nothing of that went through.
    await adminToken(server)
    expect(
      (await server.api('POST', '/auth/login', { username: 'evil', password: 'evil-password' }))
        .status,
    ).toBe(401)
  })

  test('a missing token is 401 before the body is even looked at', async () => {
    const res = await server.api('POST', '/api/v1/users', { username: 1 })
    expect(res.status).toBe(401)
  })
})

/** Every documented /api/ operation but login, called without a token (ids filled with 1). */
async function withoutToken(server: TestServer) {
  const doc = await server.api('GET', '/swagger/json')
  expect(doc.status).toBe(200)
  const answers: { method: string; path: string; status: number; needsQuery?: true }[] = []
  for (const [path, ops] of Object.entries(doc.body.paths as Record<string, any>)) {
    if (!path.startsWith('/api/') || path === '/api/v1/auth/login') continue
    // The WebSocket endpoints admit by token at the upgrade (4401); a plain GET there is a 426.
    if (path === '/api/v1/ws' || path === '/api/v1/ws/secure') {
      expect((await server.api('GET', path)).status).toBe(426)
      continue
    }
    for (const method of Object.keys(ops)) {
      if (method === 'ws') continue
      const verb = method.toUpperCase()
      const body = verb === 'GET' || verb === 'HEAD' ? undefined : {}
      const res = await server.api(verb, path.replace(/\{[^}]+\}/g, '1'), body)
      // Sent without its required query (GET /readings/aggregate), a read that passed the guard is a 422.
      const needsQuery = (ops[method].parameters ?? []).some(
        (p: any) => p.in === 'query' && p.required,
      )
      answers.push({ method, path, status: res.status, ...(needsQuery && { needsQuery }) })
    }
  }
  return answers
}

/**
 * Reads that need a token under AUTH_MODE=required whatever AUTH_READS says (/users, /webhooks and
 * device keys: in every mode).
 */
const NEED_TOKEN_ANYWAY =
  /^\/api\/v1\/(ws\/stats|users|auth\/me|webhooks|sensors\/\{id\}\/keys)(\/|$)/

/** Request lines the guard refuses without a token under AUTH_MODE=required, whatever AUTH_READS says. */
const GUARDED_LINES = [
  'GET /api/v1/ws/stats',
  'GET /api/v1/ws/stats/general',
  'POST /api/v1/ws/test-event',
  'DELETE /api/v1/sensors/1',
  'GET /xx/api/v1/users/',
  'GET /api/v1/users/',
]

/**
 * Sends each request line raw with odd Host headers: Elysia and Bun read the path of http://x/api/...
 * differently, and neither reading may skip the guard. Answers how many were refused with 401.
 */
async function oddHostRefusals(server: TestServer, lines: string[]) {
  const raw = (line: string, host: string) =>
    new Promise<string>((resolve) => {
      let text = ''
      Bun.connect({
        hostname: '127.0.0.1',
        port: server.port,
        socket: {
          data(socket, data) {
            text += data.toString()
            if (text.includes('\r\n\r\n')) {
              resolve(text)
              socket.end()
            }
          },
        },
      }).then((socket) =>
        socket.write(`${line} HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 0\r\n\r\n`),
      )
    })
  let refused = 0
  for (const host of ['x', 'ab', '', 'abcdefgh'])
    for (const line of lines) {
      const answer = await raw(line, host)
      const status = Number(answer.split(' ')[1])
      // Either refused, or (Elysia reading the path as "/") the public home page.
      const ok = status === 401 || status === 404 || /content-type: text\/html/i.test(answer)
      expect({ host, line, status, ok }).toEqual({ host, line, status, ok: true })
      if (status === 401) refused += 1
    }
  return refused
}

describe('AUTH_MODE=required', () => {
  let server: TestServer
  let tokens: Record<'admin' | 'operator' | 'viewer', Record<string, string>>
  beforeAll(async () => {
    server = await startAuthServer({ AUTH_MODE: 'required' })
    tokens = {
      admin: bearer(await adminToken(server)),
      operator: bearer(await userToken(server, { username: 'olga', role: 'operator' })),
      viewer: bearer(await userToken(server, { username: 'vera', role: 'viewer' })),
    }
  })
  afterAll(() => server.stop())

  test('reads are open, the stats need a token of any role', async () => {
    for (const path of ['/api/v1/sensors', '/api/v1/readings', '/api/v1/sensor-types/thresholds'])
      expect({ path, status: (await server.api('GET', path)).status }).toEqual({
        path,
        status: 200,
      })
    for (const path of ['/api/v1/ws/stats', '/api/v1/ws/stats/general']) {
      const none = await server.api('GET', path)
      expect(none.status).toBe(401)
      expect(none.body).toMatchObject({
        error: 'unauthorized',
        message: expect.stringContaining('/auth/login'),
      })
      expect(none.headers.get('www-authenticate')).toBe('Bearer')
      for (const role of ['admin', 'operator', 'viewer'] as const)
        expect((await server.api('GET', path, undefined, tokens[role])).status).toBe(200)
    }
  })

  test('writes need an operator or admin: a viewer gets 403 and nothing changes', async () => {
    const body = { tipo: 'temperatura', modelo: 'DHT22' }
    expect((await server.api('POST', '/api/v1/sensors', body)).status).toBe(401)
    const viewer = await server.api('POST', '/api/v1/sensors', body, tokens.viewer)
    expect(viewer.status).toBe(403)
    expect(viewer.body).toMatchObject({
      error: 'forbidden',
      message: expect.stringContaining('viewer'),
    })
    expect(
      (await server.api('POST', '/api/v1/ws/test-event?message=x', undefined, tokens.viewer))
        .status,
    ).toBe(403)
    const list = await server.api('GET', '/api/v1/sensors', undefined, tokens.viewer)
    expect(list.body).toEqual([])

    const created = await server.api('POST', '/api/v1/sensors', body, tokens.operator)
    expect(created.status).toBe(201)
    const id = created.body.id
    expect(
      (await server.api('PATCH', `/api/v1/sensors/${id}`, { nombre: 'x' }, tokens.viewer)).status,
    ).toBe(403)
    expect(
      (await server.api('DELETE', `/api/v1/sensors/${id}`, undefined, tokens.viewer)).status,
    ).toBe(403)
    expect(
      (await server.api('PATCH', `/api/v1/sensors/${id}`, { nombre: 'x' }, tokens.admin)).status,
    ).toBe(200)
    expect(
      (await server.api('DELETE', `/api/v1/sensors/${id}`, undefined, tokens.operator)).status,
    ).toBe(204)
  })

  test('a token that is malformed, badly signed, expired or not Bearer is 401', async () => {
    const subject = { username: 'admin', role: 'admin' as const, channels: ['*'] }
    const expired = await mintToken(server, subject, Math.floor(Date.now() / 1000) - 5)
    const forged = await mintToken(
      server,
      subject,
      undefined,
      'another-secret-another-secret-another!',
    )
    const header = Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')
    const payload = Buffer.from(
      JSON.stringify({ sub: 'admin', role: 'admin', channels: ['*'], exp: 4e9 }),
    ).toString('base64url')
    const unsigned = `${header}.${payload}.`
    const good = tokens.admin.authorization!.slice(7)
    const tampered = `${good.split('.')[0]}.${payload}.${good.split('.')[2]}`
    for (const authorization of [
      'Bearer abc',
      `Bearer ${expired}`,
      `Bearer ${forged}`,
      `Bearer ${unsigned}`,
      `Bearer ${tampered}`,
      `Basic ${Buffer.from('admin:x').toString('base64')}`,
      good,
      'Bearer',
    ]) {
      const res = await server.api('GET', '/api/v1/ws/stats', undefined, { authorization })
      expect(res.status).toBe(401)
      expect(res.body.error).toBe('unauthorized')
    }
    const bad = await server.api('GET', '/api/v1/ws/stats', undefined, {
      authorization: `Bearer ${expired}`,
    })
    expect(bad.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
  })

  test('without a token every documented /api/ write, the stats, /users and /auth/me answer 401; the other reads answer', async () => {
    const answers = await withoutToken(server)
    expect(answers.length).toBeGreaterThan(30)
    const reads = answers.filter((a) => a.method === 'get' && !NEED_TOKEN_ANYWAY.test(a.path))
    expect(reads.length).toBeGreaterThan(10)
    for (const answer of answers)
      expect(answer).toEqual({
        ...answer,
        status: !reads.includes(answer)
          ? 401
          : answer.needsQuery
            ? 422
            : answer.path.includes('{')
              ? 404
              : 200,
      })
  })

  test('an odd Host header cannot route around the guard', async () => {
    expect(await oddHostRefusals(server, GUARDED_LINES)).toBeGreaterThan(10)
    expect((await server.api('GET', '/api/v1/sensors', undefined, tokens.admin)).body).toEqual([])
  })

  test('health, metrics, docs, the home page and login stay open', async () => {
    for (const path of ['/health', '/metrics', '/swagger', '/swagger/json', '/'])
      expect((await server.api('GET', path)).status).toBe(200)
    expect((await server.api('POST', '/auth/login', ADMIN)).status).toBe(200)
  })
})

describe('AUTH_MODE=required with AUTH_READS=token', () => {
  let server: TestServer
  let viewer: Record<string, string>
  beforeAll(async () => {
    server = await startAuthServer({ AUTH_MODE: 'required', AUTH_READS: 'token' })
    viewer = bearer(await userToken(server, { username: 'vera', role: 'viewer' }))
  })
  afterAll(() => server.stop())

  test('reads need a token of any role, writes an operator or admin', async () => {
    for (const path of ['/api/v1/sensors', '/api/v1/readings', '/api/v1/ws/stats']) {
      const none = await server.api('GET', path)
      expect(none.status).toBe(401)
      expect(none.headers.get('www-authenticate')).toBe('Bearer')
      expect((await server.api('GET', path, undefined, viewer)).status).toBe(200)
    }
    const body = { tipo: 'temperatura', modelo: 'DHT22' }
    expect((await server.api('POST', '/api/v1/sensors', body, viewer)).status).toBe(403)
    expect((await server.api('GET', '/api/v1/sensors', undefined, viewer)).body).toEqual([])
  })

  test('every documented /api/ route but login answers 401 without a token', async () => {
    const answers = await withoutToken(server)
    expect(answers.length).toBeGreaterThan(30)
    for (const answer of answers) expect(answer).toEqual({ ...answer, status: 401 })
  })

  test('an odd Host header cannot route around the guard', async () => {
    const lines = [...GUARDED_LINES, 'GET /api/v1/sensors', 'GET /api/v1/readings/1']
    expect(await oddHostRefusals(server, lines)).toBeGreaterThan(15)
  })
})

describe('AUTH_MODE=open', () => {
  test('keeps REST and the stats open as in the original', async () => {
    const server = await startAuthServer()
    try {
      const created = await server.api('POST', '/api/v1/sensors', {
        tipo: 'temperatura',
        modelo: 'DHT22',
      })
      expect(created.status).toBe(201)
      expect((await server.api('GET', '/api/v1/sensors')).status).toBe(200)
      expect((await server.api('GET', '/api/v1/ws/stats')).status).toBe(200)
      expect(
        (await server.api('POST', '/api/v1/ws/test-event?channel=general&message=Prueba')).status,
      ).toBe(200)
    } finally {
      await server.stop()
    }
  })
})

describe('secrets', () => {
  test('tokens and passwords never reach the log', async () => {
    const capture = capturingLogger()
    const server = await startTestServer(
      { ADMIN_PASSWORD: ADMIN.password, AUTH_MODE: 'required', LOG_LEVEL: 'debug' },
      { log: capture.log },
    )
    try {
      const token = await adminToken(server)
      await server.api('POST', '/auth/login', { username: 'admin', password: 'a-wrong-password' })
      const created = await server.api(
        'POST',
        '/api/v1/users',
        { username: 'lena', password: 'lena-secret-password' },
        bearer(token),
      )
      expect(created.status).toBe(201)
      await server.api(
        'PATCH',
        `/api/v1/users/${created.body.id}`,
        { password: 'lena-other-password' },
        bearer(token),
      )
      await server.api('GET', '/api/v1/sensors', undefined, bearer(`${token}x`))
      const ws = await server.ws('/api/v1/ws/secure', { token })
      await ws.connected()
      ws.send({ action: 'refresh', token })
      await ws.next((m) => m.status === 'refreshed')
      ws.send({ action: 'refresh', token: `${token}x` })
      await ws.next((m) => m.type === 'error')
      await ws.close()
      const bad = await server.ws('/api/v1/ws/secure', { token: `${token}x` })
      await bad.closed
      await server.stop()
      expect(capture.lines.length).toBeGreaterThan(0)
      const text = capture.text()
      for (const secret of [
        ADMIN.password,
        'a-wrong-password',
        'lena-secret-password',
        'lena-other-password',
        token,
        token.split('.')[2]!,
        server.config.jwt.secret,
      ])
        expect(text).not.toContain(secret)
    } finally {
      await server.stop()
    }
  })

  test('the repository holds no secret: no .env, no private key, no JWT secret in the source', () => {
    const root = `${import.meta.dir}/..`
    const files = Bun.spawnSync(['git', 'ls-files'], { cwd: root })
      .stdout.toString()
      .split('\n')
      .filter(Boolean)
    expect(files.length).toBeGreaterThan(10)
    expect(files.filter((f) => /(^|\/)\.env(\.|$)/.test(f) && !f.endsWith('.example'))).toEqual([])
    for (const file of files) {
      if (!/\.(ts|js|json|md|sql|html|yml|yaml|toml|sh)$/.test(file) || file.endsWith('bun.lock'))
        continue
      const text = require('node:fs').readFileSync(`${root}/${file}`, 'utf8') as string
      expect({ file, key: /-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text) }).toEqual({
        file,
        key: false,
      })
      if (file.startsWith('src/'))
        expect({ file, secret: /JWT_SECRET\s*[:=]\s*['"][^'"]+['"]/.test(text) }).toEqual({
          file,
          secret: false,
        })
    }
  })

  test('a JWT_SECRET shorter than 32 bytes stops a production start with one line naming it', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short-secret' })).toThrow(
      /JWT_SECRET/,
    )
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'x'.repeat(32) })).not.toThrow()
    expect(() => loadConfig({ NODE_ENV: 'development', JWT_SECRET: 'short-secret' })).not.toThrow()
    const proc = Bun.spawnSync(['bun', 'src/index.ts'], {
      cwd: `${import.meta.dir}/..`,
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        JWT_SECRET: 'short-secret-value',
        PORT: '0',
        DATABASE_URL: `sqlite:${tempDir()}/x.db`,
      },
      stdout: 'pipe',
      stderr: 'pipe',
    })
    const stderr = proc.stderr.toString()
    expect(proc.exitCode).toBe(1)
    expect(stderr.trim().split('\n')).toHaveLength(1)
    expect(stderr).toContain('JWT_SECRET')
    expect(stderr).not.toContain('short-secret-value')
  })
})

// Keeps startServer referenced for readers: every server above is a real one started through it.
void startServer
