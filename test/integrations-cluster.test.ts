// Two instances on one PostgreSQL and one Redis: a token revoked on one is refused by the other and its
// sockets there close with 4401 within a second; a webhook changed on one is matched by the other's next
// write; every delivery is sent once, by one instance, in seq order per endpoint.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { adminToken, bearer, login, userToken } from './auth-kit'
import { createTestDatabase, startTestServer, TEST_REDIS_URL, type TestServer } from './helpers'
import { requireRedis } from './infra'
import { createWebhook, startReceiver, verify, type Receiver } from './webhook-kit'

setDefaultTimeout(30_000)

const ADMIN_PASSWORD = 'admin-password-for-tests'

describe('two instances sharing PostgreSQL and Redis', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let a: TestServer
  let b: TestServer
  let receiver: Receiver

  beforeAll(async () => {
    await requireRedis(TEST_REDIS_URL)
    db = await createTestDatabase()
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: TEST_REDIS_URL,
      REDIS_PREFIX: `vigia-test-${crypto.randomUUID().slice(0, 8)}`,
      ADMIN_PASSWORD,
      LOGIN_MAX_ATTEMPTS_PER_IP: '1000',
      LOGIN_MAX_ATTEMPTS_PER_USER: '1000',
    }
    a = await startTestServer({ ...env, INSTANCE_ID: 'instance-a' })
    b = await startTestServer({ ...env, INSTANCE_ID: 'instance-b' })
    receiver = startReceiver()
  })
  afterAll(async () => {
    receiver?.stop()
    await a?.stop()
    await b?.stop()
    await db?.drop()
  })

  test('logout on A: the token is refused on B, and B’s sockets that joined with it close 4401 within a second', async () => {
    const token = await login(a, 'admin', ADMIN_PASSWORD)
    const onB = await b.ws('/api/v1/ws/secure', { channel: 'general', token })
    await onB.connected()
    const other = await b.ws('/api/v1/ws/secure', {
      channel: 'general',
      token: await adminToken(b),
    })
    await other.connected()
    expect((await b.api('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(200)
    const started = Date.now()
    expect((await a.api('POST', '/auth/logout', undefined, bearer(token))).status).toBe(204)
    const closed = await Promise.race([onB.closed, Bun.sleep(1500).then(() => undefined)])
    expect(closed?.code).toBe(4401)
    expect(Date.now() - started).toBeLessThan(1000 + 500)
    expect((await b.api('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(401)
    other.send({ action: 'ping' })
    expect(await other.next((m) => m.type === 'pong')).toBeDefined()
    other.close()
  })

  test('a password change on B closes the user’s sockets on A with 4401', async () => {
    const token = await userToken(a, { username: 'ines', role: 'viewer' })
    const onA = await a.ws('/api/v1/ws/secure', { channel: 'general', token })
    await onA.connected()
    const users = await b.api('GET', '/api/v1/users', undefined, bearer(await adminToken(b)))
    const ines = users.body.find((u: any) => u.username === 'ines')
    // Timed from the answer: the change (and its revocation) is committed by then; hashing the new
    // password before it is not part of the revocation.
    const changed = await b.api(
      'PATCH',
      `/api/v1/users/${ines.id}`,
      { password: 'ines-new-password' },
      bearer(await adminToken(b)),
    )
    expect(changed.status).toBe(200)
    const started = Date.now()
    const closed = await Promise.race([onA.closed, Bun.sleep(1500).then(() => undefined)])
    expect(closed?.code).toBe(4401)
    expect(Date.now() - started).toBeLessThan(1500)
    expect((await a.api('GET', '/api/v1/auth/me', undefined, bearer(token))).status).toBe(401)
  })

  test('a webhook created or changed on A is matched by B’s next write', async () => {
    const admin = bearer(await adminToken(a))
    const sensor = (await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)).body
      .id
    const spare = (await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)).body
      .id
    const created = await createWebhook(a, {
      url: `${receiver.url}/follow`,
      channels: [`readings:${sensor}`],
    })
    const first = await b.api(
      'POST',
      '/api/v1/readings',
      { sensor_id: sensor, temperatura: 1 },
      admin,
    )
    await receiver.until(1, (r) => r.path === '/follow')
    await a.api(
      'PATCH',
      `/api/v1/webhooks/${created.id}`,
      { channels: [`readings:${spare}`] },
      admin,
    )
    await b.api('POST', '/api/v1/readings', { sensor_id: sensor, temperatura: 2 }, admin)
    const last = await b.api(
      'POST',
      '/api/v1/readings',
      { sensor_id: spare, temperatura: 3 },
      admin,
    )
    await receiver.until(2, (r) => r.path === '/follow')
    const got = receiver.received
      .filter((r) => r.path === '/follow')
      .map((r) => verify(created.secret, r).entity_id)
    expect(got).toEqual([first.body.id, last.body.id])
    await a.api('DELETE', `/api/v1/webhooks/${created.id}`, undefined, admin)
  })

  test('with both instances writing and dispatching, every delivery arrives once, in seq order per endpoint', async () => {
    const admin = bearer(await adminToken(a))
    const sensor = (await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)).body
      .id
    const hooks = [
      await createWebhook(a, { url: `${receiver.url}/one`, channels: [`readings:${sensor}`] }),
      // sensors:<id> also carries the sensor's anomalies (a rising series may raise one): created only.
      await createWebhook(b, {
        url: `${receiver.url}/two`,
        channels: [`sensors:${sensor}`],
        event_types: ['created'],
      }),
    ]
    const writes = []
    for (let i = 0; i < 60; i++)
      writes.push(
        (i % 2 ? a : b).api(
          'POST',
          '/api/v1/readings',
          { sensor_id: sensor, temperatura: i },
          admin,
        ),
      )
    const ids = (await Promise.all(writes)).map((r) => r.body.id)
    for (const path of ['/one', '/two']) {
      await receiver.until(60, (r) => r.path === path)
      const got = receiver.received.filter((r) => r.path === path)
      expect(got).toHaveLength(60)
      expect(new Set(got.map((r) => r.id)).size).toBe(60)
      const seqs = got.map((r) => JSON.parse(r.body).seq)
      expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
      expect(got.map((r) => JSON.parse(r.body).entity_id).sort((x, y) => x - y)).toEqual(
        [...ids].sort((x, y) => x - y),
      )
    }
    // Both endpoints got the same event under the same webhook-id.
    const one = receiver.received.filter((r) => r.path === '/one').map((r) => r.id)
    const two = receiver.received.filter((r) => r.path === '/two').map((r) => r.id)
    expect(one).toEqual(two)
    await Bun.sleep(500)
    expect(receiver.received.filter((r) => r.path === '/one')).toHaveLength(60)
    for (const hook of hooks) await a.api('DELETE', `/api/v1/webhooks/${hook.id}`, undefined, admin)
  })
})
