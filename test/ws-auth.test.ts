// WebSockets with tokens: /api/v1/ws/secure, channel rights, expiry on an open socket and refresh.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import type { TestServer } from './helpers'
import { adminToken, bearer, mintToken, startAuthServer, userToken } from './auth-kit'

// bunfig's [test] timeout is not read by Bun 1.4.5; argon2 hashing and real servers need more than 5 s under load.
setDefaultTimeout(30_000)

const now = () => Math.floor(Date.now() / 1000)

describe('/api/v1/ws/secure', () => {
  let server: TestServer
  let viewer: string
  beforeAll(async () => {
    server = await startAuthServer()
    viewer = await userToken(server, {
      username: 'sol',
      role: 'viewer',
      channels: ['sensors', 'readings:*'],
    })
  })
  afterAll(() => server.stop())

  test('without a token, or with a malformed, badly signed, unsigned or expired one, closes 4401', async () => {
    const subject = { username: 'sol', role: 'viewer' as const, channels: ['*'] }
    const header = Buffer.from('{"alg":"none","typ":"JWT"}').toString('base64url')
    const payload = Buffer.from(
      JSON.stringify({ sub: 'sol', role: 'admin', channels: ['*'], exp: now() + 600 }),
    ).toString('base64url')
    const cases: Record<string, string | undefined> = {
      missing: undefined,
      empty: '',
      malformed: 'not-a-jwt',
      three_parts: 'a.b.c',
      forged: await mintToken(server, subject, undefined, 'some-other-secret-some-other-secret!!'),
      unsigned: `${header}.${payload}.`,
      expired: await mintToken(server, subject, now() - 1),
    }
    for (const [name, token] of Object.entries(cases)) {
      const client = await server.ws(
        '/api/v1/ws/secure',
        token === undefined ? { channel: 'sensors' } : { channel: 'sensors', token },
      )
      const closed = await client.closed
      expect({ name, code: closed.code }).toEqual({ name, code: 4401 })
      expect(client.messages.filter((m) => m.type === 'connection')).toEqual([])
    }
  })

  test('with a valid token lets the user in; the stats show the token username', async () => {
    const client = await server.ws('/api/v1/ws/secure', {
      channel: 'sensors',
      token: viewer,
      user_id: 'someone-else',
    })
    expect(await client.connected()).toMatchObject({ channel: 'sensors', channels: ['sensors'] })
    const stats = await server.api('GET', '/api/v1/ws/stats/sensors')
    expect(stats.body.users).toEqual([{ user_id: 'sol', connected_at: expect.any(String) }])
    const created = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
    })
    const event = await client.event((m) => m.entity_type === 'sensor')
    expect(event).toMatchObject({ event_type: 'created', entity_id: created.body.id })
    await client.close()
  })

  test('a channel outside the user list closes 4403; `readings:*` allows readings:<id> only', async () => {
    for (const channel of ['general', 'readings', 'sensors:1', 'sensors,general']) {
      const client = await server.ws('/api/v1/ws/secure', { channel, token: viewer })
      expect({ channel, code: (await client.closed).code }).toEqual({ channel, code: 4403 })
    }
    const ok = await server.ws('/api/v1/ws/secure', {
      channel: 'readings:7,sensors',
      token: viewer,
    })
    expect((await ok.connected()).channels).toEqual(['readings:7', 'sensors'])
    await ok.close()
  })

  test('an unknown channel with a valid token closes 4400', async () => {
    const client = await server.ws('/api/v1/ws/secure', { channel: 'nope', token: viewer })
    expect((await client.closed).code).toBe(4400)
  })

  test('subscribing later to a channel not allowed answers forbidden_channel and keeps the socket', async () => {
    const client = await server.ws('/api/v1/ws/secure', { channel: 'sensors', token: viewer })
    await client.connected()
    client.send({ action: 'subscribe', channel: 'general' })
    expect(await client.next((m) => m.type === 'error')).toMatchObject({
      code: 'forbidden_channel',
    })
    await client.subscribe('readings:3')
    client.send({ action: 'ping' })
    await client.next((m) => m.type === 'pong')
    expect(client.messages.some((m) => m.status === 'subscribed' && m.channel === 'general')).toBe(
      false,
    )
    await client.close()
  })

  test('a token expiring on an open socket gets token_expired at exp, then close 4401', async () => {
    const exp = now() + 2
    const token = await mintToken(server, { username: 'sol', role: 'viewer', channels: ['*'] }, exp)
    const client = await server.ws('/api/v1/ws/secure', { token })
    await client.connected()
    const error = await client.next((m) => m.type === 'error', 6000)
    expect(error).toMatchObject({ code: 'token_expired' })
    expect(Date.now()).toBeGreaterThanOrEqual(exp * 1000)
    expect((await client.closed).code).toBe(4401)
  })

  test('refresh with a newer token of the same user keeps the socket past the old exp', async () => {
    const subject = { username: 'sol', role: 'viewer' as const, channels: ['*'] }
    const exp = now() + 2
    const short = await mintToken(server, subject, exp)
    const refreshed = await server.ws('/api/v1/ws/secure', { token: short })
    const control = await server.ws('/api/v1/ws/secure', { token: short })
    await Promise.all([refreshed.connected(), control.connected()])
    const fresh = await mintToken(server, subject, now() + 600)
    refreshed.send({ action: 'refresh', token: fresh })
    const ack = await refreshed.next((m) => m.status === 'refreshed')
    expect(ack).toMatchObject({ type: 'connection', channel: 'general' })
    expect(Date.parse(ack.token_expires_at)).toBeGreaterThan(exp * 1000 + 500_000)
    // The control socket, on the same old exp, is dropped by the same sweep that would have dropped this one.
    expect((await control.closed).code).toBe(4401)
    refreshed.send({ action: 'ping' })
    await refreshed.next((m) => m.type === 'pong')
    expect(refreshed.messages.some((m) => m.code === 'token_expired')).toBe(false)
    await refreshed.close()
  })

  test('refresh with a bad token, another user token or one that drops a held channel is an error; the socket stays', async () => {
    const client = await server.ws('/api/v1/ws/secure', { channel: 'sensors', token: viewer })
    await client.connected()
    const other = await mintToken(server, { username: 'admin', role: 'admin', channels: ['*'] })
    const narrower = await mintToken(server, {
      username: 'sol',
      role: 'viewer',
      channels: ['readings:*'],
    })
    const expired = await mintToken(
      server,
      { username: 'sol', role: 'viewer', channels: ['*'] },
      now() - 1,
    )
    const cases: [unknown, string][] = [
      ['garbage', 'invalid_token'],
      [expired, 'invalid_token'],
      [other, 'invalid_token'],
      [narrower, 'forbidden_channel'],
      [undefined, 'invalid_token'],
      [42, 'invalid_token'],
    ]
    for (const [token, code] of cases) {
      client.send({ action: 'refresh', token })
      expect(await client.next((m) => m.type === 'error')).toMatchObject({ code })
    }
    client.send({ action: 'ping' })
    await client.next((m) => m.type === 'pong')
    await client.close()
  })

  test('refresh on the open endpoint in open mode is refused politely', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'general' })
    await client.connected()
    client.send({ action: 'refresh', token: viewer })
    expect(await client.next((m) => m.type === 'error')).toMatchObject({
      code: 'refresh_not_supported',
    })
    await client.close()
  })

  test('the open endpoint in open mode is unchanged: no token, user_id as given', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'locations', user_id: 'user9' })
    await client.connected()
    const stats = await server.api('GET', '/api/v1/ws/stats/locations')
    expect(stats.body.users).toEqual([{ user_id: 'user9', connected_at: expect.any(String) }])
    await client.close()
  })
})

describe('/api/v1/ws under AUTH_MODE=required', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startAuthServer({ AUTH_MODE: 'required' })
  })
  afterAll(() => server.stop())

  test('needs a token (4401 without) and names the user from it', async () => {
    const anonymous = await server.ws('/api/v1/ws', { channel: 'general', user_id: 'me' })
    expect((await anonymous.closed).code).toBe(4401)
    const bad = await server.ws('/api/v1/ws', { channel: 'general', token: 'abc' })
    expect((await bad.closed).code).toBe(4401)

    const token = await adminToken(server)
    const client = await server.ws('/api/v1/ws', { channel: 'general', token, user_id: 'me' })
    await client.connected()
    const stats = await server.api('GET', '/api/v1/ws/stats/general', undefined, bearer(token))
    expect(stats.body.users.map((u: { user_id: string }) => u.user_id)).toEqual(['admin'])
    await client.close()
  })

  test('checks channels like the secure endpoint', async () => {
    const token = await userToken(server, {
      username: 'lim',
      role: 'viewer',
      channels: ['anomalies'],
    })
    const denied = await server.ws('/api/v1/ws', { channel: 'general', token })
    expect((await denied.closed).code).toBe(4403)
    const allowed = await server.ws('/api/v1/ws', { channel: 'anomalies', token })
    await allowed.connected()
    await allowed.close()
  })
})
