// Token revocation: logout refuses the token at once on REST and closes its WebSockets with 4401; a
// password change, a rename or a deletion does the same for every token of that user, and only theirs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { adminToken, bearer, login, startAuthServer, userToken } from './auth-kit'
import type { TestServer, WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let admin: Record<string, string>

beforeAll(async () => {
  // Many logins from one address: the login rate limit is not what these tests are about.
  server = await startAuthServer({
    AUTH_MODE: 'required',
    LOGIN_MAX_ATTEMPTS_PER_IP: '1000',
    LOGIN_MAX_ATTEMPTS_PER_USER: '1000',
  })
  admin = bearer(await adminToken(server))
})
afterAll(() => server.stop())

const me = (token: string) => server.api('GET', '/api/v1/auth/me', undefined, bearer(token))

async function secureSocket(token: string, channel = 'general'): Promise<WsClient> {
  const ws = await server.ws('/api/v1/ws/secure', { channel, token })
  await ws.connected()
  return ws
}

/** Resolves with the close code, failing if it takes longer than `ms`. */
async function closedWithin(ws: WsClient, ms: number) {
  const started = Date.now()
  const closed = await Promise.race([ws.closed, Bun.sleep(ms + 500).then(() => undefined)])
  if (!closed) throw new Error(`socket still open after ${ms + 500} ms`)
  return { ...closed, after: Date.now() - started }
}

describe('POST /auth/logout', () => {
  test('revokes the presented token at once on both paths; the user’s other tokens keep working', async () => {
    await userToken(server, { username: 'lola', role: 'viewer' })
    for (const path of ['/auth/logout', '/api/v1/auth/logout']) {
      const token = await login(server, 'lola', 'lola-password')
      const other = await login(server, 'lola', 'lola-password')
      expect((await me(token)).status).toBe(200)
      const out = await server.api('POST', path, undefined, bearer(token))
      expect(out.status).toBe(204)
      const after = await me(token)
      expect(after.status).toBe(401)
      expect(after.body.error).toBe('unauthorized')
      expect((await server.api('GET', '/api/v1/ws/stats', undefined, bearer(token))).status).toBe(
        401,
      )
      expect((await server.api('POST', path, undefined, bearer(token))).status).toBe(401)
      expect((await me(other)).status).toBe(200)
    }
    expect((await server.api('POST', '/auth/logout')).status).toBe(401)
  })

  test('closes, with 4401 within a second, every socket that joined with that token; others stay', async () => {
    const token = await login(server, 'admin', 'admin-password-for-tests')
    const keep = await adminToken(server)
    const secure = await secureSocket(token)
    const plain = await server.ws('/api/v1/ws', { channel: 'sensors', token })
    await plain.connected()
    const survivor = await secureSocket(keep)
    const started = Date.now()
    await server.api('POST', '/auth/logout', undefined, bearer(token))
    for (const ws of [secure, plain]) {
      const closed = await closedWithin(ws, 1000)
      expect(closed.code).toBe(4401)
      expect(closed.reason).toBe('Token revoked')
    }
    expect(Date.now() - started).toBeLessThan(1500)
    expect(secure.messages.at(-1)).toMatchObject({ type: 'error', code: 'token_revoked' })
    survivor.send({ action: 'ping' })
    expect(await survivor.next((m) => m.type === 'pong')).toBeDefined()
    // The revoked token cannot open a new socket either.
    const again = await server.ws('/api/v1/ws/secure', { channel: 'general', token })
    expect((await again.closed).code).toBe(4401)
    survivor.close()
  })

  test('a socket that refreshed to a token later revoked is closed; the token it left is not checked', async () => {
    const first = await login(server, 'admin', 'admin-password-for-tests')
    const second = await login(server, 'admin', 'admin-password-for-tests')
    const ws = await secureSocket(first)
    ws.send({ action: 'refresh', token: second })
    await ws.next((m) => m.type === 'connection' && m.status === 'refreshed')
    await server.api('POST', '/auth/logout', undefined, bearer(first))
    ws.send({ action: 'ping' })
    expect(await ws.next((m) => m.type === 'pong')).toBeDefined()
    await server.api('POST', '/auth/logout', undefined, bearer(second))
    expect((await closedWithin(ws, 1000)).code).toBe(4401)
  })
})

describe('changing a user', () => {
  test('a new password revokes every token of that user, REST and sockets; a fresh login works', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'pepe', password: 'pepe-password', role: 'operator' },
      admin,
    )
    const tokens = [
      await login(server, 'pepe', 'pepe-password'),
      await login(server, 'pepe', 'pepe-password'),
    ]
    const bystander = await userToken(server, { username: 'bea', role: 'viewer' })
    const sockets = await Promise.all(tokens.map((t) => secureSocket(t)))
    const watching = await secureSocket(bystander)
    const changed = await server.api(
      'PATCH',
      `/api/v1/users/${created.body.id}`,
      { password: 'pepe-new-password' },
      admin,
    )
    expect(changed.status).toBe(200)
    for (const token of tokens) expect((await me(token)).status).toBe(401)
    for (const ws of sockets) expect((await closedWithin(ws, 1000)).code).toBe(4401)
    expect((await me(bystander)).status).toBe(200)
    const fresh = await login(server, 'pepe', 'pepe-new-password')
    expect((await me(fresh)).status).toBe(200)
    watching.send({ action: 'ping' })
    expect(await watching.next((m) => m.type === 'pong')).toBeDefined()
    watching.close()
  })

  test('a change of role or channels alone leaves the tokens alone', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'rita', password: 'rita-password', role: 'viewer' },
      admin,
    )
    const token = await login(server, 'rita', 'rita-password')
    await server.api('PATCH', `/api/v1/users/${created.body.id}`, { channels: ['general'] }, admin)
    expect((await me(token)).status).toBe(200)
  })

  test('a rename or a deletion revokes the user’s tokens; a new user with the old name starts clean', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'nico', password: 'nico-password', role: 'viewer' },
      admin,
    )
    const before = await login(server, 'nico', 'nico-password')
    await server.api('PATCH', `/api/v1/users/${created.body.id}`, { username: 'nicolas' }, admin)
    expect((await me(before)).status).toBe(401)
    const renamed = await login(server, 'nicolas', 'nico-password')
    const ws = await secureSocket(renamed)
    expect(
      (await server.api('DELETE', `/api/v1/users/${created.body.id}`, undefined, admin)).status,
    ).toBe(204)
    expect((await me(renamed)).status).toBe(401)
    expect((await closedWithin(ws, 1000)).code).toBe(4401)
    await server.api(
      'POST',
      '/api/v1/users',
      { username: 'nicolas', password: 'other-password', role: 'viewer' },
      admin,
    )
    expect((await me(await login(server, 'nicolas', 'other-password'))).status).toBe(200)
  })

  test('an admin who changes their own password is logged out too', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/users',
      { username: 'root2', password: 'root2-password', role: 'admin' },
      admin,
    )
    const own = bearer(await login(server, 'root2', 'root2-password'))
    const res = await server.api(
      'PATCH',
      `/api/v1/users/${created.body.id}`,
      { password: 'root2-password-2' },
      own,
    )
    expect(res.status).toBe(200)
    expect((await server.api('GET', '/api/v1/users', undefined, own)).status).toBe(401)
  })
})
