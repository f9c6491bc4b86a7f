// Several instances on one PostgreSQL and one Redis: fan-out across instances, resume anywhere, stats,
// and the faults (Redis restarting, PostgreSQL down) with real servers, clients and brokers.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import Redis from 'ioredis'
import {
  createTestDatabase,
  startTestServer,
  TEST_REDIS_URL,
  type TestServer,
  WsClient,
} from './helpers'
import { loadConfig } from '../src/config'
import { freePorts, requireRedis, startPrivatePostgres, startPrivateRedis, until } from './infra'

setDefaultTimeout(30_000)

type Msg = Record<string, any>

const prefix = () => `vigia-test-${crypto.randomUUID().slice(0, 8)}`

/** Sends a marker test-event through `server` and waits until every client has it. */
async function markerThrough(server: TestServer, clients: WsClient[]) {
  const marker = `marker-${crypto.randomUUID()}`
  const res = await server.api('POST', `/api/v1/ws/test-event?channel=general&message=${marker}`)
  expect(res.status).toBe(200)
  for (const client of clients) await client.event((m) => m.message === marker, 15_000)
}

/** A general-channel client must see one unbroken run of seqs: nothing missing, repeated or reordered. */
function expectUnbroken(events: Msg[]) {
  const seqs = events.map((e) => e.seq)
  expect(seqs.length).toBeGreaterThan(0)
  expect(seqs).toEqual(seqs.map((_, i) => seqs[0] + i))
}

const sensorsIn = (events: Msg[]) =>
  events
    .filter((e) => e.entity_type === 'sensor' && e.event_type === 'created')
    .map((e) => e.data.modelo as string)

async function health(server: TestServer) {
  return (await server.api('GET', '/health')).body as Msg
}

describe('two instances sharing PostgreSQL and Redis', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let a: TestServer
  let b: TestServer

  beforeAll(async () => {
    await requireRedis(TEST_REDIS_URL)
    db = await createTestDatabase()
    const env = { DATABASE_URL: db.url, REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: prefix() }
    a = await startTestServer({ ...env, INSTANCE_ID: 'instance-a' })
    b = await startTestServer({ ...env, INSTANCE_ID: 'instance-b' })
  })
  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await db?.drop()
  })

  test('every client on either instance gets every event of its channel once and in seq order, whichever instance wrote it', async () => {
    const onA = await a.ws('/api/v1/ws', { channel: 'general' })
    const onB = await b.ws('/api/v1/ws', { channel: 'general' })
    const sensorsOnB = await b.ws('/api/v1/ws', { channel: 'sensors' })
    await Promise.all([onA.connected(), onB.connected(), sensorsOnB.connected()])

    const writes: Promise<unknown>[] = []
    for (let i = 0; i < 15; i++) {
      writes.push(a.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: `a-${i}` }))
      writes.push(b.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: `b-${i}` }))
      writes.push(a.api('POST', '/api/v1/locations', { nombre: `sala-${i}` }))
    }
    const results = (await Promise.all(writes)) as { status: number }[]
    expect(results.every((r) => r.status === 201)).toBe(true)
    await markerThrough(a, [onA, onB])
    await markerThrough(b, [onA, onB])

    const expected = [...Array(15).keys()].flatMap((i) => [`a-${i}`, `b-${i}`]).sort()
    for (const client of [onA, onB]) {
      const events = client.receivedEvents()
      expectUnbroken(events)
      expect(sensorsIn(events).sort()).toEqual(expected)
    }
    // Both instances sent the very same stream, seq for seq.
    const from = Math.max(onA.receivedEvents()[0]!.seq, onB.receivedEvents()[0]!.seq)
    const tail = (c: WsClient) => c.receivedEvents().filter((e) => e.seq >= from)
    expect(tail(onA).map((e) => e.seq)).toEqual(tail(onB).map((e) => e.seq))
    expect(tail(onA).map((e) => JSON.stringify(e))).toEqual(tail(onB).map((e) => JSON.stringify(e)))

    // A channel client gets only its channel's events, still in order and once each.
    const sensorEvents = await sensorsOnB.events(30)
    expect(sensorsIn(sensorEvents).sort()).toEqual(expected)
    expect(sensorEvents.every((e) => e.entity_type === 'sensor')).toBe(true)
    const seqs = sensorEvents.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    expect(new Set(seqs).size).toBe(seqs.length)
    for (const client of [onA, onB, sensorsOnB]) await client.close()
  })

  test('a client moving from instance A to instance B with since misses nothing', async () => {
    const first = await a.ws('/api/v1/ws', { channel: 'sensors' })
    await first.connected()
    await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'before-move' })
    const seen = await first.event((m) => m.data?.modelo === 'before-move')
    await first.close()

    // While the client is away, both instances write.
    await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'away-1' })
    await b.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'away-2' })
    await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'away-3' })

    const moved = await b.ws('/api/v1/ws', { channel: 'sensors', since: seen.seq })
    const hello = await moved.connected()
    expect(hello.recovered).toBe(true)
    await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'live-after-move' })

    const events = await moved.events(4)
    expect(events.map((e) => e.data.modelo)).toEqual([
      'away-1',
      'away-2',
      'away-3',
      'live-after-move',
    ])
    const seqs = events.map((e) => e.seq)
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y))
    expect(seqs[0]).toBeGreaterThan(seen.seq)
    await moved.close()
  })

  test('stats and metrics show this instance’s figures and the deployment’s totals', async () => {
    const clients = [
      await a.ws('/api/v1/ws', { channel: 'readings', user_id: 'ana' }),
      await a.ws('/api/v1/ws', { channel: 'general' }),
      await b.ws('/api/v1/ws', { channel: 'readings', user_id: 'bea' }),
    ]
    for (const client of clients) await client.connected()

    // Each instance reports to Redis within a second of a change; wait for B's report to show on A.
    let stats: Msg = {}
    await until('the deployment totals on A to count B’s connection', async () => {
      stats = (await a.api('GET', '/api/v1/ws/stats')).body
      return stats.deployment.total_connections === 3
    })
    expect(stats.total_connections).toBe(2)
    expect(stats.channels.readings.connections).toBe(1)
    expect(stats.instance).toMatchObject({ id: 'instance-a', connections: 2, pubsub: 'ok' })
    expect(stats.deployment).toMatchObject({ instances: 2, complete: true, total_channels: 2 })
    expect(stats.deployment.channels.readings.connections).toBe(2)
    expect(stats.deployment.channels.readings.users.map((u: Msg) => u.user_id).sort()).toEqual([
      'ana',
      'bea',
    ])
    expect(stats.deployment.members.map((m: Msg) => m.id).sort()).toEqual([
      'instance-a',
      'instance-b',
    ])

    let one: Msg = {}
    await until('B to have A’s report too', async () => {
      one = (await b.api('GET', '/api/v1/ws/stats/readings')).body
      return one.deployment.connections === 2
    })
    expect(one).toMatchObject({ channel: 'readings', connections: 1 })
    expect(one.deployment.connections).toBe(2)

    const metrics = await (await fetch(`${b.base}/metrics`)).text()
    expect(metrics).toContain('vigia_instance_info{instance="instance-b",pubsub="redis"} 1')
    expect(metrics).toMatch(/^vigia_deployment_instances 2$/m)
    expect(metrics).toMatch(/^vigia_deployment_ws_connections 3$/m)
    expect(metrics).toMatch(/^vigia_pubsub_up 1$/m)
    for (const client of clients) await client.close()
  })

  test('malformed, foreign or forged messages on the Redis channel never reach clients nor stall the stream', async () => {
    const client = await b.ws('/api/v1/ws', { channel: 'general' })
    const { epoch } = await client.connected()
    const channel = `${b.config.redisPrefix}:events`
    const raw = new Redis(TEST_REDIS_URL)
    await raw.publish(channel, 'not a frame')
    await raw.publish(channel, `another-history\n999\n general \n{"forged":"foreign"}`)
    // Right history, but a seq that was never committed: it must not hold back the real events.
    await raw.publish(channel, `${epoch}\n99999999\n general \n{"forged":"seq"}`)
    raw.disconnect()
    for (let i = 0; i < 3; i++)
      await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: `after-garbage-${i}` })
    await markerThrough(a, [client])
    await markerThrough(b, [client])
    const events = client.receivedEvents()
    expectUnbroken(events)
    expect(sensorsIn(events)).toEqual(['after-garbage-0', 'after-garbage-1', 'after-garbage-2'])
    expect(events.some((e) => e.forged)).toBe(false)
    await client.close()
  })
})

describe('Redis restarting mid-stream', () => {
  let db: Awaited<ReturnType<typeof createTestDatabase>>
  let redis: Awaited<ReturnType<typeof startPrivateRedis>>
  let a: TestServer
  let b: TestServer

  beforeAll(async () => {
    db = await createTestDatabase()
    redis = await startPrivateRedis()
    const env = { DATABASE_URL: db.url, REDIS_URL: redis.url, REDIS_PREFIX: prefix() }
    a = await startTestServer({ ...env, INSTANCE_ID: 'instance-a' })
    b = await startTestServer({ ...env, INSTANCE_ID: 'instance-b' })
  })
  afterAll(async () => {
    await a?.stop()
    await b?.stop()
    await redis?.stop()
    await db?.drop()
  })

  test('each instance keeps serving while Redis is down, and no client misses an event across the outage', async () => {
    const onA = await a.ws('/api/v1/ws', { channel: 'general' })
    const onB = await b.ws('/api/v1/ws', { channel: 'general' })
    await Promise.all([onA.connected(), onB.connected()])
    const write = (phase: string, i: number) =>
      (i % 2 === 0 ? a : b).api('POST', '/api/v1/sensors', { tipo: 't', modelo: `${phase}-${i}` })

    for (let i = 0; i < 6; i++) expect((await write('before', i)).status).toBe(201)
    await markerThrough(a, [onA, onB])

    await redis.stop()
    for (const server of [a, b])
      await until('the instance to notice Redis is down', async () => {
        return (await health(server)).pubsub.status === 'down'
      })
    expect((await health(a)).status).toBe('ok')

    // Writes go on; each instance's clients still hear the other instance (read from the event log).
    for (let i = 0; i < 6; i++) expect((await write('during', i)).status).toBe(201)
    for (const client of [onA, onB])
      for (let i = 0; i < 6; i++)
        await client.event((m) => m.data?.modelo === `during-${i}`, 15_000)
    const stats = (await b.api('GET', '/api/v1/ws/stats')).body
    expect(stats.deployment.complete).toBe(false)

    await redis.start()
    for (const server of [a, b])
      await until(
        'the instance to reconnect to Redis',
        async () => (await health(server)).pubsub.status === 'ok',
        20_000,
      )
    for (let i = 0; i < 6; i++) expect((await write('after', i)).status).toBe(201)
    await markerThrough(a, [onA, onB])
    await markerThrough(b, [onA, onB])

    const expected = ['before', 'during', 'after']
      .flatMap((phase) => [...Array(6).keys()].map((i) => `${phase}-${i}`))
      .sort()
    for (const client of [onA, onB]) {
      const events = client.receivedEvents()
      expectUnbroken(events)
      expect(sensorsIn(events).sort()).toEqual(expected)
    }
    await onA.close()
    await onB.close()
  }, 60_000)
})

describe('instances sharing PostgreSQL without Redis', () => {
  test('still hear each other, through the event log', async () => {
    const db = await createTestDatabase()
    const a = await startTestServer({ DATABASE_URL: db.url })
    const b = await startTestServer({ DATABASE_URL: db.url })
    try {
      const client = await a.ws('/api/v1/ws', { channel: 'sensors' })
      await client.connected()
      await b.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'from-b' })
      await a.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'from-a' })
      const events = await client.events(2)
      expect(events.map((e) => e.data.modelo)).toEqual(['from-b', 'from-a'])
      expect(events[1]!.seq).toBe(events[0]!.seq + 1)
      await client.close()
    } finally {
      await a.stop()
      await b.stop()
      await db.drop()
    }
  })
})

describe('PostgreSQL going down', () => {
  let pg: Awaited<ReturnType<typeof startPrivatePostgres>>
  let server: TestServer

  beforeAll(async () => {
    pg = await startPrivatePostgres()
    server = await startTestServer({ DATABASE_URL: pg.url })
  })
  afterAll(async () => {
    await server?.stop()
    await pg?.destroy()
  })

  test('requests fail with 503 and a clear message while it is down, and work again once it is back, without a restart', async () => {
    const created = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'before' })
    expect(created.status).toBe(201)
    const client = await server.ws('/api/v1/ws', { channel: 'sensors' })
    await client.connected()

    await pg.stop()
    for (const [method, path, body] of [
      ['GET', '/api/v1/sensors', undefined],
      ['GET', `/api/v1/sensors/${created.body.id}`, undefined],
      ['POST', '/api/v1/sensors', { tipo: 't', modelo: 'during' }],
      ['POST', '/api/v1/ws/test-event?channel=general&message=x', undefined],
    ] as const) {
      const res = await server.api(method, path, body)
      expect(res.status).toBe(503)
      expect(res.body.error).toBe('database_unavailable')
      expect(res.body.message).toContain('retry in a few seconds')
      expect(res.headers.get('retry-after')).toBe('5')
    }
    const down = await server.api('GET', '/health')
    expect(down.status).toBe(503)
    expect(down.body.database.status).toBe('down')

    await pg.start()
    let again = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'after' })
    await until('writes to work again', async () => {
      if (again.status === 201) return true
      again = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'after' })
      return again.status === 201
    })
    const list = await server.api('GET', '/api/v1/sensors')
    expect(list.body.map((s: Msg) => s.modelo)).toEqual(['before', 'after'])
    const event = await client.event((m) => m.entity_type === 'sensor')
    expect(event.data.modelo).toBe('after')
    expect((await server.api('GET', '/health')).status).toBe(200)
    await client.close()
  }, 60_000)
})

describe('bun run cluster', () => {
  test('starts N instances on consecutive ports that share events, and stops them all on SIGTERM', async () => {
    await requireRedis(TEST_REDIS_URL)
    const db = await createTestDatabase()
    const port = freePorts(2)
    const cluster = Bun.spawn(['bun', 'run', 'cluster', '2', '--port', String(port)], {
      cwd: `${import.meta.dir}/..`,
      env: {
        ...process.env,
        DATABASE_URL: db.url,
        REDIS_URL: TEST_REDIS_URL,
        REDIS_PREFIX: prefix(),
        LOG_LEVEL: 'warn',
      },
      stdout: 'ignore',
      stderr: 'ignore',
    })
    try {
      const base = (p: number) => `http://127.0.0.1:${p}`
      for (const p of [port, port + 1])
        await until(
          `instance on ${p} healthy`,
          async () => (await fetch(`${base(p)}/health`)).ok,
          20_000,
        )
      const client = await WsClient.connect(`ws://127.0.0.1:${port + 1}/api/v1/ws?channel=sensors`)
      await client.connected()
      const created = await fetch(`${base(port)}/api/v1/sensors`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tipo: 't', modelo: 'via-cluster' }),
      })
      expect(created.status).toBe(201)
      expect((await client.event((m) => m.entity_type === 'sensor')).data.modelo).toBe(
        'via-cluster',
      )
      const stats = await (await fetch(`${base(port + 1)}/api/v1/ws/stats`)).json()
      expect(stats.instance.id).toBe(`vigia-${port + 1}`)
      await client.close()
      cluster.kill('SIGTERM')
      expect(await cluster.exited).toBe(0)
    } finally {
      cluster.kill('SIGKILL')
      await cluster.exited
      await db.drop()
    }
  }, 60_000)
})

describe('configuration for several instances', () => {
  test('REDIS_PREFIX and INSTANCE_ID are validated, naming the variable', () => {
    expect(() => loadConfig({ REDIS_PREFIX: 'has space' })).toThrow(/REDIS_PREFIX/)
    expect(() => loadConfig({ INSTANCE_ID: 'x*y' })).toThrow(/INSTANCE_ID/)
    const config = loadConfig({ REDIS_PREFIX: 'zone-1', INSTANCE_ID: 'api-1' })
    expect(config.redisPrefix).toBe('zone-1')
    expect(config.instanceId).toBe('api-1')
    expect(loadConfig({}).redisPrefix).toBe('vigia')
    expect(loadConfig({}).instanceId).not.toBe(loadConfig({}).instanceId)
  })
})
