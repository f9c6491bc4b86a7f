// Webhooks: admin-only endpoints, matching events POSTed as the exact WebSocket frame with Standard
// Webhooks signatures (checked with the standardwebhooks library), the outbox's atomicity, retries in
// order, disabling, pause and resume, secret rotation and the test send.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { adminToken, bearer, startAuthServer, userToken } from './auth-kit'
import { createSensor, settle, until, type TestServer, type WsClient } from './helpers'
import { createStore } from '../src/modules/webhooks/store'
import { createWebhook, startReceiver, verify, type Receiver } from './webhook-kit'

setDefaultTimeout(30_000)

const reading = (sensor_id: number, temperatura = 21.5) => ({
  sensor_id,
  temperatura,
  humedad: 50,
  timestamp: '2025-07-20T10:30:00Z',
})

let server: TestServer
let admin: Record<string, string>
let receiver: Receiver
const hooks: number[] = []

beforeAll(async () => {
  server = await startAuthServer({ WEBHOOK_RETRY_BASE_MS: '50', WEBHOOK_RETRY_MAX_MS: '200' })
  admin = bearer(await adminToken(server))
  receiver = startReceiver()
})
afterAll(async () => {
  await server.stop()
  receiver.stop()
})

/** A webhook that this file deletes after the test that made it, so tests do not see each other's. */
async function hook(body: Record<string, unknown>) {
  const created = await createWebhook(server, body, admin.authorization!.slice(7))
  hooks.push(created.id)
  return created
}
async function dropHooks() {
  for (const id of hooks.splice(0))
    await server.api('DELETE', `/api/v1/webhooks/${id}`, undefined, admin)
}

describe('managing webhooks', () => {
  test('an admin creates one (201 with id and a whsec_ secret shown once), lists, reads, changes and deletes it', async () => {
    const created = await server.api(
      'POST',
      '/api/v1/webhooks',
      { url: `${receiver.url}/a`, channels: ['anomalies'], event_types: ['anomaly_detected'] },
      admin,
    )
    expect(created.status).toBe(201)
    const id = created.body.id
    expect(id).toEqual(expect.any(Number))
    expect(created.body).toMatchObject({
      url: `${receiver.url}/a`,
      channels: ['anomalies'],
      event_types: ['anomaly_detected'],
      status: 'active',
      pending: 0,
    })
    expect(created.body.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/)
    expect(Buffer.from(created.body.secret.slice(6), 'base64')).toHaveLength(32)

    const listed = await server.api('GET', '/api/v1/webhooks', undefined, admin)
    expect(listed.status).toBe(200)
    expect(listed.body.map((w: any) => w.id)).toContain(id)
    expect(JSON.stringify(listed.body)).not.toContain(created.body.secret)
    const got = await server.api('GET', `/api/v1/webhooks/${id}`, undefined, admin)
    expect(got.body).toEqual(listed.body.find((w: any) => w.id === id))
    expect(got.body.secret).toBeUndefined()

    const changed = await server.api(
      'PATCH',
      `/api/v1/webhooks/${id}`,
      {
        channels: ['readings:5', 'general'],
        event_types: [],
        status: 'paused',
        description: 'Busca',
      },
      admin,
    )
    expect(changed.status).toBe(200)
    expect(changed.body).toMatchObject({
      channels: ['readings:5', 'general'],
      event_types: [],
      status: 'paused',
      description: 'Busca',
    })
    expect((await server.api('DELETE', `/api/v1/webhooks/${id}`, undefined, admin)).status).toBe(
      204,
    )
    expect((await server.api('GET', `/api/v1/webhooks/${id}`, undefined, admin)).status).toBe(404)
  })

  test('need an admin token: none 401, an operator 403', async () => {
    const operator = bearer(await userToken(server, { username: 'olga', role: 'operator' }))
    for (const [method, path] of [
      ['GET', '/api/v1/webhooks'],
      ['POST', '/api/v1/webhooks'],
      ['GET', '/api/v1/webhooks/1'],
      ['PATCH', '/api/v1/webhooks/1'],
      ['DELETE', '/api/v1/webhooks/1'],
      ['POST', '/api/v1/webhooks/1/rotate'],
      ['POST', '/api/v1/webhooks/1/test'],
      ['GET', '/api/v1/webhooks/1/deliveries'],
    ] as const) {
      const body = method === 'GET' || method === 'DELETE' ? undefined : { url: receiver.url }
      expect({ method, path, status: (await server.api(method, path, body)).status }).toEqual({
        method,
        path,
        status: 401,
      })
      const res = await server.api(method, path, body, operator)
      expect({ method, path, status: res.status }).toEqual({ method, path, status: 403 })
    }
  })

  test('bad input is a 422 naming the field and creates nothing', async () => {
    const before = (await server.api('GET', '/api/v1/webhooks', undefined, admin)).body.length
    const cases: [Record<string, unknown>, string][] = [
      [{}, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: 'ftp://example.com/x' }, 'url'],
      [{ url: 'http://user:pw@example.com/x' }, 'url'],
      [{ url: receiver.url, channels: ['nope'] }, 'channels[0]'],
      [{ url: receiver.url, channels: ['general', 'readings:0'] }, 'channels[1]'],
      [{ url: receiver.url, channels: [] }, 'channels'],
      [{ url: receiver.url, event_types: ['exploded'] }, 'event_types[0]'],
      [{ url: receiver.url, status: 'disabled' }, 'status'],
    ]
    for (const [body, field] of cases) {
      const res = await server.api('POST', '/api/v1/webhooks', body, admin)
      expect({ body, status: res.status, field: res.body.field }).toEqual({
        body,
        status: 422,
        field,
      })
      expect(res.body.message).toEqual(expect.any(String))
    }
    expect((await server.api('POST', '/api/v1/webhooks', 'nope', admin)).status).toBe(400)
    expect((await server.api('GET', '/api/v1/webhooks', undefined, admin)).body.length).toBe(before)
    expect(
      (await server.api('PATCH', '/api/v1/webhooks/999999', { status: 'paused' }, admin)).status,
    ).toBe(404)
    expect(
      (await server.api('GET', '/api/v1/webhooks/999999/deliveries', undefined, admin)).status,
    ).toBe(404)
  })
})

describe('deliveries', () => {
  let watcher: WsClient
  beforeAll(async () => {
    watcher = await server.ws('/api/v1/ws', { channel: 'general' })
    await watcher.connected()
  })
  afterAll(async () => {
    await dropHooks()
    watcher.close()
  })

  test('each matching event is POSTed as the exact WebSocket frame, signed per Standard Webhooks; other sensors and types are not sent', async () => {
    const mine = await createSensor(server)
    const other = await createSensor(server)
    const socket = await server.ws('/api/v1/ws', { channel: `readings:${mine}` })
    await socket.connected()
    const created = await hook({
      url: `${receiver.url}/match`,
      channels: [`readings:${mine}`],
      event_types: ['created'],
    })
    const from = receiver.received.length
    await server.api('POST', '/api/v1/readings', reading(other), admin)
    await server.api('POST', '/api/v1/readings', reading(mine, 22), admin)
    const stored = await server.api('POST', '/api/v1/readings', reading(mine, 23), admin)
    await server.api('DELETE', `/api/v1/readings/${stored.body.id}`, undefined, admin)
    const frames = await socket.events(3)
    await settle(server, watcher, 'general')
    const mineReceived = () => receiver.received.slice(from).filter((r) => r.path === '/match')
    await until(async () => mineReceived().length >= 2, 'two deliveries')
    const sent = mineReceived()
    // Byte for byte the frames the socket got, in order (the delete is filtered out by type).
    expect(sent.map((r) => r.body)).toEqual(frames.slice(0, 2).map((f) => JSON.stringify(f)))
    for (const r of sent) {
      expect(verify(created.secret, r)).toEqual(JSON.parse(r.body))
      expect(r.id).toMatch(/^msg_[0-9a-f]{12}_\d+$/)
      expect(Math.abs(Number(r.timestamp) - Date.now() / 1000)).toBeLessThan(30)
      expect(r.signature).toMatch(/^v1,[A-Za-z0-9+/]{43}=$/)
    }
    expect(() =>
      verify(
        'whsec_' + Buffer.from(crypto.getRandomValues(new Uint8Array(32))).toString('base64'),
        sent[0]!,
      ),
    ).toThrow()
    // The receiver has the request before the server has recorded its answer: wait for the log.
    const deliveries = () =>
      server.api('GET', `/api/v1/webhooks/${created.id}/deliveries`, undefined, admin)
    await until(
      async () => (await deliveries()).body.every((d: any) => d.status !== 'pending'),
      'the log records both answers',
    )
    const log = await deliveries()
    expect(log.headers.get('x-total-count')).toBe('2')
    expect(log.body).toHaveLength(2)
    for (const d of log.body)
      expect(d).toMatchObject({
        status: 'delivered',
        attempts: 1,
        response_status: 200,
        last_error: null,
      })
    expect(log.body.map((d: any) => d.msg_id)).toEqual(sent.map((r) => r.id).reverse())
    socket.close()
  })

  test('a change that rolls back leaves no delivery; a committed one always has its own', async () => {
    const sensor = await createSensor(server)
    const created = await hook({ url: `${receiver.url}/atomic`, channels: ['readings'] })
    // The batch fails on its last item: nothing is stored, no event, no delivery.
    const bad = await server.api(
      'POST',
      '/api/v1/readings/batch',
      [reading(sensor), reading(sensor), { ...reading(sensor), sensor_id: 999_999 }],
      admin,
    )
    expect(bad.status).toBe(422)
    const good = await server.api(
      'POST',
      '/api/v1/readings/batch',
      [reading(sensor), reading(sensor)],
      admin,
    )
    expect(good.status).toBe(201)
    await receiver.until(2, (r) => r.path === '/atomic')
    await settle(server, watcher, 'general')
    const log = await server.api(
      'GET',
      `/api/v1/webhooks/${created.id}/deliveries`,
      undefined,
      admin,
    )
    expect(log.body.map((d: any) => d.seq).sort()).toEqual(
      receiver.received
        .filter((r) => r.path === '/atomic')
        .map((r) => JSON.parse(r.body).seq)
        .sort(),
    )
    expect(
      receiver.received
        .filter((r) => r.path === '/atomic')
        .map((r) => JSON.parse(r.body).entity_id),
    ).toEqual(good.body.map((r: any) => r.id))
  })

  test('system events reach a webhook on general filtered to system_event', async () => {
    const created = await hook({
      url: `${receiver.url}/system`,
      channels: ['general'],
      event_types: ['system_event'],
    })
    await createSensor(server)
    await server.api('POST', '/api/v1/ws/test-event?channel=sensors&message=hola', undefined, admin)
    await receiver.until(1, (r) => r.path === '/system')
    const got = receiver.received.filter((r) => r.path === '/system')
    expect(got).toHaveLength(1)
    expect(verify(created.secret, got[0]!)).toMatchObject({ type: 'system_event', message: 'hola' })
  })
})

describe('when the receiver fails', () => {
  afterAll(dropHooks)

  test('deliveries are retried with backoff, keep the same webhook-id, and arrive in seq order once it answers again', async () => {
    const sensor = await createSensor(server)
    let down = true
    const flaky = startReceiver(() => (down ? 503 : 200))
    try {
      const created = await hook({ url: `${flaky.url}/flaky`, channels: [`readings:${sensor}`] })
      const posted = []
      for (let i = 0; i < 12; i++)
        posted.push(
          (await server.api('POST', '/api/v1/readings', reading(sensor, i), admin)).body.id,
        )
      // The first delivery is attempted several times; nothing behind it is sent meanwhile.
      await flaky.until(4)
      expect(new Set(flaky.received.map((r) => r.id)).size).toBe(1)
      const retried = await server.api(
        'GET',
        `/api/v1/webhooks/${created.id}/deliveries?status=pending`,
        undefined,
        admin,
      )
      const head = retried.body.at(-1)
      expect(head.attempts).toBeGreaterThanOrEqual(3)
      expect(head).toMatchObject({ response_status: 503, last_error: 'HTTP 503: nope' })
      expect(retried.body).toHaveLength(12)
      // Gaps between attempts grow (base 50 ms doubling, capped at 200 ms, ±20 %).
      const times = flaky.received.map((r) => r.at)
      expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(0.8 * (50 + 100 + 200))

      down = false
      await flaky.until(12, (r) => r.answered === 200)
      const delivered = flaky.delivered()
      expect(delivered.map((r) => JSON.parse(r.body).entity_id)).toEqual(posted)
      const seqs = delivered.map((r) => JSON.parse(r.body).seq)
      expect(seqs).toEqual([...seqs].sort((a, b) => a - b))
      expect(delivered[0]!.id).toBe(flaky.received[0]!.id)
      await until(async () => {
        const log = await server.api(
          'GET',
          `/api/v1/webhooks/${created.id}/deliveries`,
          undefined,
          admin,
        )
        return log.body.every((d: any) => d.status === 'delivered')
      }, 'all recorded as delivered')
      const log = await server.api(
        'GET',
        `/api/v1/webhooks/${created.id}/deliveries`,
        undefined,
        admin,
      )
      expect(log.body.at(-1).attempts).toBe(
        flaky.received.filter((r) => r.id === delivered[0]!.id).length,
      )
      expect(log.body.at(-1).response_ms).toEqual(expect.any(Number))
      const metrics = await (await fetch(`${server.base}/metrics`)).text()
      expect(metrics).toMatch(/^vigia_webhook_deliveries_total\{outcome="failed_attempt"\} [1-9]/m)
      expect(metrics).toMatch(/^vigia_webhook_deliveries_total\{outcome="delivered"\} [1-9]/m)
    } finally {
      flaky.stop()
    }
  })

  test('a receiver that is not listening for a while gets everything, in order, once it listens again', async () => {
    const sensor = await createSensor(server)
    const first = startReceiver()
    const port = first.port
    first.stop()
    const created = await hook({
      url: `http://127.0.0.1:${port}/down`,
      channels: [`readings:${sensor}`],
    })
    const ids = []
    for (let i = 0; i < 5; i++)
      ids.push((await server.api('POST', '/api/v1/readings', reading(sensor, i), admin)).body.id)
    await until(async () => {
      const log = await server.api(
        'GET',
        `/api/v1/webhooks/${created.id}/deliveries`,
        undefined,
        admin,
      )
      return log.body.at(-1).attempts >= 2
    }, 'two refused attempts')
    const log = await server.api(
      'GET',
      `/api/v1/webhooks/${created.id}/deliveries`,
      undefined,
      admin,
    )
    expect(log.body.at(-1)).toMatchObject({ status: 'pending', response_status: null })
    expect(log.body.at(-1).last_error).toEqual(expect.any(String))
    const back = startReceiver(() => 200, port)
    try {
      await back.until(5)
      expect(back.received.map((r) => verify(created.secret, r).entity_id)).toEqual(ids)
    } finally {
      back.stop()
    }
  })

  test('a receiver that never answers 2xx within WEBHOOK_RETRY_FOR is disabled, with a system_event on general', async () => {
    const short = await startAuthServer({
      WEBHOOK_RETRY_FOR: '1',
      WEBHOOK_RETRY_BASE_MS: '50',
      WEBHOOK_RETRY_MAX_MS: '100',
    })
    const broken = startReceiver(() => 500)
    try {
      const token = await adminToken(short)
      const general = await short.ws('/api/v1/ws', { channel: 'general' })
      await general.connected()
      const sensor = await createSensor(short)
      const created = await createWebhook(
        short,
        { url: `${broken.url}/broken`, channels: ['readings'] },
        token,
      )
      for (let i = 0; i < 3; i++)
        await short.api('POST', '/api/v1/readings', reading(sensor, i), bearer(token))
      const notice = await general.event(
        (m) => m.type === 'system_event' && m.data?.kind === 'webhook_disabled',
        10_000,
      )
      expect(notice).toMatchObject({
        level: 'error',
        data: {
          module: 'webhooks',
          webhook_id: created.id,
          severity: 'high',
          host: new URL(broken.url).host,
        },
      })
      expect(notice.data.last_error).toContain('HTTP 500')
      const got = await short.api('GET', `/api/v1/webhooks/${created.id}`, undefined, bearer(token))
      expect(got.body).toMatchObject({ status: 'disabled', pending: 0 })
      expect(got.body.disabled_reason).toContain('HTTP 500')
      const log = await short.api(
        'GET',
        `/api/v1/webhooks/${created.id}/deliveries`,
        undefined,
        bearer(token),
      )
      expect(log.body.map((d: any) => d.status)).toEqual(['cancelled', 'cancelled', 'failed'])
      expect(broken.received.every((r) => r.id === broken.received[0]!.id)).toBe(true)
      expect(broken.received.length).toBeGreaterThanOrEqual(3)

      // Disabled: new events make no deliveries; resuming sends the next ones.
      const attempts = broken.received.length
      await short.api('POST', '/api/v1/readings', reading(sensor, 9), bearer(token))
      await settle(short, general, 'general')
      expect(
        (await short.api('GET', `/api/v1/webhooks/${created.id}`, undefined, bearer(token))).body
          .pending,
      ).toBe(0)
      expect(broken.received.length).toBe(attempts)
      broken.setAnswer(() => 200)
      const resumed = await short.api(
        'PATCH',
        `/api/v1/webhooks/${created.id}`,
        { status: 'active' },
        bearer(token),
      )
      expect(resumed.body).toMatchObject({ status: 'active', disabled_reason: null })
      const after = await short.api('POST', '/api/v1/readings', reading(sensor, 10), bearer(token))
      await broken.until(1, (r) => r.answered === 200)
      expect(JSON.parse(broken.delivered()[0]!.body).entity_id).toBe(after.body.id)
    } finally {
      broken.stop()
      await short.stop()
    }
  })

  test('a paused webhook queues matching events and sends them, in order, once resumed', async () => {
    const sensor = await createSensor(server)
    const created = await hook({
      url: `${receiver.url}/paused`,
      // readings:<id>, not sensors:<id>: the first reading also turns the sensor online (an updated event).
      channels: [`readings:${sensor}`],
      status: 'paused',
    })
    const ids = []
    for (let i = 0; i < 3; i++)
      ids.push((await server.api('POST', '/api/v1/readings', reading(sensor, i), admin)).body.id)
    const watcher = await server.ws('/api/v1/ws', { channel: 'general' })
    await watcher.connected()
    await settle(server, watcher, 'general')
    await Bun.sleep(300)
    expect(receiver.received.filter((r) => r.path === '/paused')).toHaveLength(0)
    expect(
      (await server.api('GET', `/api/v1/webhooks/${created.id}`, undefined, admin)).body.pending,
    ).toBe(3)
    await server.api('PATCH', `/api/v1/webhooks/${created.id}`, { status: 'active' }, admin)
    await receiver.until(3, (r) => r.path === '/paused')
    expect(
      receiver.received
        .filter((r) => r.path === '/paused')
        .map((r) => JSON.parse(r.body).entity_id),
    ).toEqual(ids)
    watcher.close()
  })
})

describe('secrets and tests', () => {
  afterAll(dropHooks)

  test('after a rotation each delivery carries two signatures, the new and the old secret both verify; with overlap 0 only the new', async () => {
    const sensor = await createSensor(server)
    const created = await hook({ url: `${receiver.url}/rotate`, channels: [`readings:${sensor}`] })
    const rotated = await server.api('POST', `/api/v1/webhooks/${created.id}/rotate`, {}, admin)
    expect(rotated.status).toBe(200)
    expect(rotated.body.secret).toMatch(/^whsec_/)
    expect(rotated.body.secret).not.toBe(created.secret)
    const overlapEnd = Date.parse(rotated.body.previous_secret_expires_at)
    expect(Math.abs(overlapEnd - Date.now() - 86_400_000)).toBeLessThan(60_000)
    await server.api('POST', '/api/v1/readings', reading(sensor), admin)
    await receiver.until(1, (r) => r.path === '/rotate')
    const first = receiver.received.filter((r) => r.path === '/rotate')[0]!
    expect(first.signature.split(' ')).toHaveLength(2)
    expect(verify(created.secret, first)).toMatchObject({ entity_type: 'reading' })
    expect(verify(rotated.body.secret, first)).toMatchObject({ entity_type: 'reading' })

    const again = await server.api(
      'POST',
      `/api/v1/webhooks/${created.id}/rotate`,
      { overlap_seconds: 0 },
      admin,
    )
    expect(again.body.previous_secret_expires_at).toBeNull()
    await server.api('POST', '/api/v1/readings', reading(sensor), admin)
    await receiver.until(2, (r) => r.path === '/rotate')
    const second = receiver.received.filter((r) => r.path === '/rotate')[1]!
    expect(second.signature.split(' ')).toHaveLength(1)
    expect(verify(again.body.secret, second)).toMatchObject({ entity_type: 'reading' })
    expect(() => verify(rotated.body.secret, second)).toThrow()
  })

  test('send test POSTs a signed system_event with seq 0 at once and logs it; a dead endpoint answers delivered false with the error', async () => {
    const created = await hook({
      url: `${receiver.url}/test`,
      channels: ['anomalies'],
      status: 'paused',
    })
    const res = await server.api('POST', `/api/v1/webhooks/${created.id}/test`, undefined, admin)
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      delivered: true,
      delivery: { status: 'delivered', attempts: 1, response_status: 200, seq: 0 },
    })
    const got = receiver.received.filter((r) => r.path === '/test')
    expect(got).toHaveLength(1)
    expect(verify(created.secret, got[0]!)).toMatchObject({
      type: 'system_event',
      seq: 0,
      data: { test: true, webhook_id: created.id },
    })
    const gone = startReceiver()
    const deadUrl = `${gone.url}/dead`
    gone.stop()
    const dead = await hook({ url: deadUrl, channels: ['anomalies'] })
    const failed = await server.api('POST', `/api/v1/webhooks/${dead.id}/test`, undefined, admin)
    expect(failed.body).toMatchObject({
      delivered: false,
      delivery: { status: 'failed', response_status: null },
    })
    expect(failed.body.delivery.last_error).toEqual(expect.any(String))
    const log = await server.api('GET', `/api/v1/webhooks/${dead.id}/deliveries`, undefined, admin)
    expect(log.body).toEqual([failed.body.delivery])
  })
})

describe('the delivery log', () => {
  afterAll(dropHooks)

  test('keeps the newest finished deliveries of each endpoint and never prunes pending ones', async () => {
    const created = await hook({ url: `${receiver.url}/pruned`, channels: ['anomalies'] })
    const other = await hook({ url: `${receiver.url}/kept`, channels: ['anomalies'] })
    for (let i = 0; i < 5; i++) {
      await server.api('POST', `/api/v1/webhooks/${created.id}/test`, undefined, admin)
      await server.api('POST', `/api/v1/webhooks/${other.id}/test`, undefined, admin)
    }
    const sensor = await createSensor(server)
    await server.api('PATCH', `/api/v1/webhooks/${created.id}`, { status: 'paused' }, admin)
    await server.api(
      'PATCH',
      `/api/v1/webhooks/${created.id}`,
      { channels: [`readings:${sensor}`] },
      admin,
    )
    await server.api('POST', '/api/v1/readings', reading(sensor), admin)
    const before = await server.api(
      'GET',
      `/api/v1/webhooks/${created.id}/deliveries`,
      undefined,
      admin,
    )
    expect(before.body.map((d: any) => d.status)).toEqual([
      'pending',
      ...Array(5).fill('delivered'),
    ])
    await createStore(server.ctx.db, 'test', 30_000).prune(() => false, 2)
    const after = await server.api(
      'GET',
      `/api/v1/webhooks/${created.id}/deliveries`,
      undefined,
      admin,
    )
    expect(after.body.map((d: any) => d.id)).toEqual(before.body.slice(0, 2).map((d: any) => d.id))
    const kept = await server.api(
      'GET',
      `/api/v1/webhooks/${other.id}/deliveries`,
      undefined,
      admin,
    )
    expect(kept.body).toHaveLength(2)
  })
})
