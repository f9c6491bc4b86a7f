// PostgreSQL and Redis going away under load: the server never crashes, refuses at once while the
// database is down, recovers as soon as it is back, and a client moving between instances while Redis
// is down resumes exactly where it was.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import {
  api,
  createTestDatabase,
  startTestServer,
  type ApiResponse,
  type TestServer,
} from './helpers'
import { spawnServer, startPrivatePostgres, startPrivateRedis, until } from './infra'

setDefaultTimeout(30_000)

type Msg = Record<string, any>

/** The bound on any answer while the database is down: a refusal must be immediate, not a wait. */
const PROMPT_MS = 1000

async function timed(request: () => Promise<ApiResponse>) {
  const started = performance.now()
  const res = await request()
  return { res, ms: performance.now() - started }
}

describe('PostgreSQL stopped and started under writes', () => {
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>
  let server: Awaited<ReturnType<typeof spawnServer>>

  beforeAll(async () => {
    pg = await startPrivatePostgres()
    server = await spawnServer({ DATABASE_URL: pg.url })
  })
  afterAll(async () => {
    await server?.stop()
    await pg?.destroy()
  })

  test('the server survives every restart, refuses with 503 at once while it is down, and stores again as soon as it is back', async () => {
    const post = (path: string, body: unknown) => api(server.base, 'POST', path, body)
    const sensor = (await post('/api/v1/sensors', { tipo: 't', modelo: 'outage' })).body
    let writing = true
    const slow: string[] = []
    const acknowledged: number[] = []
    const writer = async () => {
      while (writing) {
        const { res, ms } = await timed(() =>
          post('/api/v1/readings', { sensor_id: sensor.id, temperatura: 20 }),
        ).catch(() => ({ res: undefined, ms: 0 }))
        if (!res) return // the server is gone: the exit code tells
        if (res.status === 201) acknowledged.push(res.body.id)
        else expect(res.status).toBe(503)
        if (ms > PROMPT_MS) slow.push(`${res.status} after ${Math.round(ms)} ms`)
        if (res.status === 503) await Bun.sleep(20)
      }
    }
    const writers = [writer(), writer(), writer()]

    for (let round = 0; round < 3; round++) {
      await Bun.sleep(500)
      await pg.stop()
      // Long enough for the driver's reconnect backoff to have grown, as in a real outage.
      const downUntil = Date.now() + 3000
      while (Date.now() < downUntil) {
        for (const [method, path] of [
          ['GET', '/health'],
          ['GET', '/api/v1/sensors'],
          ['POST', '/api/v1/ws/test-event?channel=general'],
        ] as const) {
          const { res, ms } = await timed(() => api(server.base, method, path))
          expect(res.status).toBe(503)
          if (path !== '/health') {
            expect(res.body.error).toBe('database_unavailable')
            expect(res.headers.get('retry-after')).toBe('5')
          }
          if (ms > PROMPT_MS)
            slow.push(`${method} ${path} ${res.status} after ${Math.round(ms)} ms`)
        }
        await Bun.sleep(100)
      }
      await pg.start()
      const back = Date.now()
      await until('a write to be stored again', async () => {
        const res = await post('/api/v1/readings', { sensor_id: sensor.id, temperatura: 21 })
        if (res.status === 201) acknowledged.push(res.body.id)
        return res.status === 201
      })
      // As soon as it is back: the breaker's probe runs every 200 ms.
      expect(Date.now() - back).toBeLessThan(PROMPT_MS)
      expect((await api(server.base, 'GET', '/health')).status).toBe(200)
    }
    writing = false
    await Promise.all(writers)

    expect(server.exitCode).toBeUndefined()
    expect(slow).toEqual([])
    const stored = new Set<number>()
    for (let offset = 0; ; offset += 1000) {
      const page = await api(
        server.base,
        'GET',
        `/api/v1/readings?sensor_id=${sensor.id}&limit=1000&offset=${offset}`,
      )
      for (const reading of page.body) stored.add(reading.id)
      if (page.body.length < 1000) break
    }
    expect(acknowledged.filter((id) => !stored.has(id))).toEqual([])
  }, 90_000)
})

describe('moving to another instance while Redis is down', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>
  let a: TestServer
  let b: TestServer

  beforeAll(async () => {
    db = await createTestDatabase()
    redis = await startPrivateRedis()
    const env = {
      DATABASE_URL: db.url,
      REDIS_URL: redis.url,
      REDIS_PREFIX: `vigia-test-${crypto.randomUUID().slice(0, 8)}`,
    }
    a = await startTestServer({ ...env, INSTANCE_ID: 'instance-a' })
    b = await startTestServer({ ...env, INSTANCE_ID: 'instance-b' })
  })
  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await redis?.stop()
    await db?.drop()
  })

  test('a since that the new instance has not read from the log yet is waited for, not taken for lost history nor sent again', async () => {
    await redis.stop()
    for (const server of [a, b])
      await until(
        'the instance to notice Redis is down',
        async () => (await server.api('GET', '/health')).body.pubsub.status === 'down',
      )
    for (let move = 0; move < 5; move++) {
      const onA = await a.ws('/api/v1/ws', { channel: 'sensors' })
      const hello = await onA.connected()
      await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: `seen-${move}` })
      const seen = await onA.event((m) => m.data?.modelo === `seen-${move}`)
      await onA.close()

      // B reads A's events from the log every 250 ms: right now it has most likely not read `seen`.
      const onB = await b.ws('/api/v1/ws', {
        channel: 'sensors',
        since: seen.seq,
        epoch: hello.epoch,
      })
      const resumed = await onB.connected()
      expect(resumed.recovered).toBe(true)
      await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: `after-${move}` })
      const next = await onB.event((m) => m.entity_type === 'sensor', 5000)
      expect(next.data.modelo).toBe(`after-${move}`)
      expect(next.seq).toBeGreaterThan(seen.seq)
      const repeated = onB.receivedEvents().filter((m: Msg) => m.seq <= seen.seq)
      expect(repeated).toEqual([])
      await onB.close()
    }
  })
})
