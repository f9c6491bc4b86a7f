// Resuming with `since`: every missed event once and in order, the seam with the live stream,
// retention (`recovered: false`), epochs, and replay that waits for a slow reader instead of dropping.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { asc, eq, gte, lt } from 'drizzle-orm'
import { Elysia } from 'elysia'
import { join } from 'node:path'
import { loadConfig } from '../src/config'
import { events } from '../src/db/schema'
import { createContext } from '../src/context'
import { websocketOptions } from '../src/realtime'
import { realtimeRoutes, type Admit } from '../src/realtime/routes'
import { CLOSE, parseChannels } from '../src/realtime/socket'
import { createSensor, metric, settle, tempDir, until, WsClient, type TestServer } from './helpers'
import { RawWs, serversPerTest } from './delivery-kit'

// Real servers and processes on a shared 2-core machine: the 5 s default is too tight.
setDefaultTimeout(30_000)

const start = serversPerTest()

const reading = (sensorId: number, i: number) => ({
  sensor_id: sensorId,
  temperatura: 20 + (i % 10),
  humedad: 50,
  timestamp: '2025-07-20T10:30:00Z',
})

/** `writers` concurrent loops, each storing `each` readings one POST at a time; the ids that got 201. */
async function writeConcurrently(
  server: TestServer,
  sensorId: number,
  writers: number,
  each: number,
) {
  const loops = Array.from({ length: writers }, async (_, w) => {
    const ids: number[] = []
    for (let i = 0; i < each; i++) {
      const res = await server.api('POST', '/api/v1/readings', reading(sensorId, w * each + i))
      expect(res.status).toBe(201)
      ids.push(res.body.id)
    }
    return ids
  })
  return (await Promise.all(loops)).flat()
}

const seqs = (events: Record<string, any>[]) => events.map((e) => e.seq as number)
const range = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => from + i)

describe('resuming with since', () => {
  test('a client that missed 500 events from five concurrent writers gets exactly those 500, in order, then the live stream', async () => {
    const server = await start()
    const sensorId = await createSensor(server)
    const first = await server.ws('/api/v1/ws', { channel: 'readings' })
    const hello = await first.connected()
    const seen = server.api('POST', '/api/v1/readings', reading(sensorId, 0))
    const lastSeen = (await first.event()).seq as number
    expect((await seen).status).toBe(201)
    await first.close()

    const ids = await writeConcurrently(server, sensorId, 5, 100)
    expect(new Set(ids).size).toBe(500)

    const resumed = await server.ws('/api/v1/ws', {
      channel: 'readings',
      since: lastSeen,
      epoch: hello.epoch,
    })
    expect(await resumed.connected()).toMatchObject({ recovered: true, epoch: hello.epoch })
    const missed = await resumed.events(500)
    // seq is deployment-wide: anomaly events raised by these readings take seqs in between.
    const missedSeqs = seqs(missed)
    expect(missedSeqs[0]).toBeGreaterThan(lastSeen)
    expect(missedSeqs).toEqual([...new Set(missedSeqs)].sort((a, b) => a - b))
    expect(missed.map((e) => e.entity_id).sort((a, b) => a - b)).toEqual(
      [...ids].sort((a, b) => a - b),
    )
    expect(missed.every((e) => e.entity_type === 'reading' && e.event_type === 'created')).toBe(
      true,
    )

    const live = await server.api('POST', '/api/v1/readings', reading(sensorId, 1))
    const next = await resumed.event()
    expect(next).toMatchObject({ entity_id: live.body.id })
    expect(next.seq).toBeGreaterThan(missedSeqs[499]!)
    await settle(server, resumed, 'readings')
    expect(resumed.receivedEvents()).toHaveLength(502)
    await resumed.close()
  })

  test('resuming while writers keep emitting at full speed gives every event once, in seq order, across the seam', async () => {
    const server = await start({ WEBSOCKET_BACKPRESSURE_LIMIT: '65536' })
    const sensorId = await createSensor(server)
    const since = (await server.api('GET', '/health')).body.events.last_seq as number
    // ~10 MB of backlog: more than the kernel buffers hold, so the replay has to wait for the reader.
    for (let i = 0; i < 2000; i++)
      await server.ctx.emitter.system({
        level: 'info',
        message: `backlog ${i}`,
        data: { blob: 'x'.repeat(5_000) },
      })

    let writing = true
    let written = 0
    const writers = Array.from({ length: 4 }, async () => {
      while (writing) {
        const res = await server.api('POST', '/api/v1/readings', reading(sensorId, written))
        expect(res.status).toBe(201)
        written += 1
      }
    })
    const client = await RawWs.connect(`${server.base}/api/v1/ws?channel=general&since=${since}`)
    client.pause()
    await until(
      async () => (await metric(server, 'vigia_ws_replay_pauses_total')) >= 1,
      'a replay pause',
    )
    // A write committed while the replay is held (PostgreSQL writes are slower: wait for one).
    await until(async () => written > 0, 'a write during the replay')
    const duringReplay = written
    client.resume()
    // Past the backlog and past what was written while the replay was held: the seam is behind us.
    const beyond = server.ctx.realtime.publisher.lastSeq + 50
    await client.next((f) => f.opcode === 1 && JSON.parse(f.payload.toString()).seq >= beyond)
    writing = false
    await Promise.all(writers)
    const marker = await server.api('POST', '/api/v1/ws/test-event?channel=general&message=end')
    await client.next(
      (f) => f.opcode === 1 && JSON.parse(f.payload.toString()).seq === marker.body.event.seq,
    )

    expect(duringReplay).toBeGreaterThan(0)
    expect(written).toBeGreaterThan(duringReplay)
    const events = client.messages().filter((m) => m.type !== 'connection')
    expect(seqs(events)).toEqual(range(since + 1, marker.body.event.seq))
    client.end()
  }, 60_000)

  test('reconnecting right after the newest event while writes keep committing resumes every time, without a spurious 1011', async () => {
    const server = await start()
    const sensorId = await createSensor(server)
    let writing = true
    const writers = Array.from({ length: 4 }, async (_, w) => {
      for (let i = 0; writing; i++) {
        const res = await server.api('POST', '/api/v1/readings', reading(sensorId, w + i))
        expect(res.status).toBe(201)
      }
    })
    const first = await server.ws('/api/v1/ws', { channel: 'readings' })
    const hello = await first.connected()
    let last = (await first.event()).seq as number
    await first.close()
    // Each reconnect names the newest event it saw, so the resume often starts with nothing to replay
    // while the next commit lands during its reads.
    for (let round = 0; round < 200; round++) {
      const client = await server.ws('/api/v1/ws', {
        channel: 'readings',
        since: last,
        epoch: hello.epoch,
      })
      expect(await client.connected()).toMatchObject({ recovered: true })
      const next = await client.event()
      expect(next.seq).toBeGreaterThan(last)
      // The rest of its group commit (frames of one publish arrive together).
      await Bun.sleep(2)
      last = Math.max(...seqs(client.receivedEvents()))
      expect((await client.close()).code).not.toBe(CLOSE.internal)
    }
    writing = false
    await Promise.all(writers)
  }, 60_000)

  test('several channels on one connection replay each matching event once', async () => {
    const server = await start()
    const sensorId = await createSensor(server)
    const since = (await server.api('GET', '/health')).body.events.last_seq as number
    const r = await server.api('POST', '/api/v1/readings', reading(sensorId, 1))
    await server.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'DHT11' })
    await server.api('POST', '/api/v1/ws/test-event?channel=locations&message=elsewhere')

    const client = await server.ws('/api/v1/ws', {
      channel: `readings,sensors:${sensorId}`,
      since,
    })
    expect(await client.connected()).toMatchObject({ recovered: true })
    await settle(server, client, 'readings')
    const got = client.receivedEvents()
    // The reading (on both channels), its sensor going online (sensors:<id>), and the marker.
    expect(got).toHaveLength(3)
    expect(got[0]).toMatchObject({ entity_type: 'reading', entity_id: r.body.id, seq: since + 1 })
    expect(got[1]).toMatchObject({ entity_type: 'sensor', entity_id: sensorId, seq: since + 2 })
    await client.close()
  })
})

describe('retention and history', () => {
  test('a since older than retention answers recovered false and replays all that is still retained', async () => {
    const server = await start({ EVENT_RETENTION_COUNT: '20' })
    const sensorId = await createSensor(server)
    const batch = Array.from({ length: 50 }, (_, i) => reading(sensorId, i))
    expect((await server.api('POST', '/api/v1/readings/batch', batch)).status).toBe(201)
    const last = (await server.api('GET', '/health')).body.events.last_seq as number
    expect(await server.ctx.realtime.prune()).toBe(last - 20)

    const old = await server.ws('/api/v1/ws', { channel: 'general', since: 1 })
    expect(await old.connected()).toMatchObject({ recovered: false, oldest_seq: last - 19 })
    expect(seqs(await old.events(20))).toEqual(range(last - 19, last))
    await settle(server, old, 'general')
    expect(old.receivedEvents()).toHaveLength(21)

    const recent = await server.ws('/api/v1/ws', { channel: 'general', since: last - 5 })
    expect(await recent.connected()).toMatchObject({ recovered: true })
    expect(seqs(await recent.events(5))).toEqual(range(last - 4, last))
    await Promise.all([old.close(), recent.close()])
  })

  test('events older than EVENT_RETENTION_SECONDS are pruned; resuming from the newest seq still recovers', async () => {
    const server = await start({ EVENT_RETENTION_SECONDS: '60' })
    await server.api('POST', '/api/v1/ws/test-event?channel=general&message=old')
    const last = (await server.api('GET', '/health')).body.events.last_seq as number
    expect(await server.ctx.realtime.prune(Date.now() + 120_000)).toBe(last)

    const upToDate = await server.ws('/api/v1/ws', { channel: 'general', since: last })
    expect(await upToDate.connected()).toMatchObject({ recovered: true })
    const behind = await server.ws('/api/v1/ws', { channel: 'general', since: last - 1 })
    expect(await behind.connected()).toMatchObject({ recovered: false })
    await settle(server, behind, 'general')
    expect(behind.receivedEvents()).toHaveLength(1)
    await Promise.all([upToDate.close(), behind.close()])
  })

  test('retention by age lets go of the oldest run of old events only: an event still young is kept, even before an older one', async () => {
    const server = await start({ EVENT_RETENTION_SECONDS: '60' })
    const first = ((await server.api('GET', '/health')).body.events.last_seq as number) + 1
    for (let i = 0; i < 6; i++)
      await server.api('POST', `/api/v1/ws/test-event?channel=general&message=age-${i}`)
    const now = Date.now()
    // Two old events, a young one, an old one written after it (the clock stepped back), two young.
    const ages = [600, 300, 10, 900, 5, 1]
    await server.ctx.db.transaction(async (tx) => {
      // The events of the server's start, before these: old as well.
      await tx
        .update(events)
        .set({ created_at: now - 3600_000 })
        .where(lt(events.seq, first))
      for (const [i, age] of ages.entries())
        await tx
          .update(events)
          .set({ created_at: now - age * 1000 })
          .where(eq(events.seq, first + i))
    })
    await server.ctx.realtime.prune(now)
    const kept = await server.ctx.db.read
      .select({ seq: events.seq })
      .from(events)
      .where(gte(events.seq, first))
      .orderBy(asc(events.seq))
    expect(kept.map((r) => r.seq)).toEqual(range(first + 2, first + 5))
    // Once the young one ages, the old one after it goes too.
    await server.ctx.realtime.prune(now + 60_000)
    expect(await server.ctx.db.read.select({ seq: events.seq }).from(events)).toEqual([])
  })

  test('retention never deletes what a replaying client has yet to read', async () => {
    const server = await start({ EVENT_RETENTION_COUNT: '1', WEBSOCKET_BACKPRESSURE_LIMIT: '4096' })
    const since = (await server.api('GET', '/health')).body.events.last_seq as number
    // 1500 events of 5 KB: the replay reads them in pages of 1000, the second page after the prune.
    // One transaction, so no background retention pass can run before the client connects.
    await server.ctx.emitter.transact(async (_tx, emit) => {
      for (let i = 0; i < 1500; i++)
        emit({
          entity_type: 'sensor',
          event_type: 'updated',
          entity_id: 1,
          data: { bulk: i, blob: 'x'.repeat(5_000) },
          action: 'bulk',
        })
    })
    const last = server.ctx.realtime.publisher.lastSeq
    const raw = await RawWs.connect(`${server.base}/api/v1/ws?channel=general&since=${since}`)
    raw.pause()
    // While the paused reader holds the replay, a retention pass keeps every event after its cursor.
    await until(
      async () => (await metric(server, 'vigia_ws_replay_pauses_total')) >= 1,
      'a replay pause',
    )
    await server.ctx.realtime.prune()
    raw.resume()
    await raw.next((f) => f.opcode === 1 && JSON.parse(f.payload.toString()).seq === last)
    const events = raw.messages().filter((m) => m.type === 'entity_event')
    expect(raw.messages()[0]).toMatchObject({ type: 'connection', recovered: true })
    expect(seqs(events)).toEqual(range(since + 1, last))
    raw.end()
  }, 60_000)

  test('a replay that outgrows the client buffer waits for the client instead of dropping frames', async () => {
    const server = await start({ WEBSOCKET_BACKPRESSURE_LIMIT: '65536' })
    const since = (await server.api('GET', '/health')).body.events.last_seq as number
    // ~12 MB of history: far more than the kernel buffers and the 64 KiB limit together.
    for (let i = 0; i < 240; i++)
      await server.ctx.emitter.system({
        level: 'info',
        message: `bulk ${i}`,
        data: { blob: 'x'.repeat(50_000) },
      })
    const last = server.ctx.realtime.publisher.lastSeq
    const raw = await RawWs.connect(`${server.base}/api/v1/ws?channel=general&since=${since}`)
    raw.pause()
    await until(
      async () => (await metric(server, 'vigia_ws_replay_pauses_total')) >= 1,
      'a replay pause',
    )
    raw.resume()
    await raw.next((f) => f.opcode === 1 && JSON.parse(f.payload.toString()).seq === last)
    expect(seqs(raw.messages().filter((m) => m.type === 'system_event'))).toEqual(
      range(since + 1, last),
    )
    expect(raw.frames.some((f) => f.opcode === 8)).toBe(false)
    expect(await metric(server, 'vigia_ws_dropped_total', 'reason="slow"')).toBe(0)
    raw.end()
  }, 60_000)
})

describe('epochs', () => {
  test('every database has its own epoch, announced in the connection message', async () => {
    const a = await start()
    const b = await start()
    const ca = await a.ws('/api/v1/ws')
    const cb = await b.ws('/api/v1/ws')
    const [ha, hb] = [await ca.connected(), await cb.connected()]
    expect(ha.epoch).toMatch(/^[0-9a-f-]{36}$/)
    expect(hb.epoch).toMatch(/^[0-9a-f-]{36}$/)
    expect(ha.epoch).not.toBe(hb.epoch)
    await Promise.all([ca.close(), cb.close()])
  })

  test('a since from another epoch answers recovered false, replays nothing and goes live', async () => {
    const server = await start()
    await server.api('POST', '/api/v1/ws/test-event?channel=general&message=before')
    const client = await server.ws('/api/v1/ws', {
      channel: 'general',
      since: 0,
      epoch: '00000000-0000-0000-0000-000000000000',
    })
    const hello = await client.connected()
    expect(hello).toMatchObject({ recovered: false })
    expect(hello.epoch).not.toBe('00000000-0000-0000-0000-000000000000')
    await settle(server, client, 'general')
    expect(client.receivedEvents()).toHaveLength(1)
    await client.close()
  })

  test('a since ahead of the log (a seq from another history) answers recovered false and goes live', async () => {
    const server = await start()
    const client = await server.ws('/api/v1/ws', { channel: 'general', since: 999_999 })
    expect(await client.connected()).toMatchObject({ recovered: false })
    await settle(server, client, 'general')
    expect(client.receivedEvents()).toHaveLength(1)
    await client.close()
  })

  test('a malformed since closes the socket with 4400', async () => {
    const server = await start()
    const client = await server.ws('/api/v1/ws', { channel: 'general', since: 'yesterday' })
    expect((await client.closed).code).toBe(4400)
  })
})

test('since works on /api/v1/ws/secure too, through whatever Admit hook guards it', async () => {
  const dir = tempDir()
  const config = loadConfig({
    DATABASE_URL: `sqlite:${join(dir, 'secure.db')}`,
    LOG_LEVEL: 'silent',
  })
  const ctx = await createContext(config)
  // Stands in for the auth module: the secure endpoint admits only this token.
  const admit: Admit = async (query, secure) => {
    if (secure && query.token !== 'valid-token')
      return { code: CLOSE.unauthorized, reason: 'token required' }
    const parsed = parseChannels(query.channel)
    return 'error' in parsed ? { code: CLOSE.badQuery, reason: parsed.error } : parsed
  }
  const app = new Elysia({ websocket: websocketOptions(config) })
    .use(realtimeRoutes(ctx, admit))
    .listen({ port: 0, hostname: '127.0.0.1' })
  ctx.realtime.attach(app.server!)
  const base = `ws://127.0.0.1:${app.server!.port}/api/v1/ws/secure?channel=general`
  try {
    const first = await WsClient.connect(`${base}&token=valid-token`)
    const hello = await first.connected()
    await first.close()
    for (let i = 0; i < 3; i++) await ctx.emitter.system({ level: 'info', message: `missed ${i}` })

    const resumed = await WsClient.connect(
      `${base}&token=valid-token&since=${hello.last_seq}&epoch=${hello.epoch}`,
    )
    expect(await resumed.connected()).toMatchObject({ recovered: true })
    const missed = await resumed.events(3)
    expect(missed.map((e) => e.message)).toEqual(['missed 0', 'missed 1', 'missed 2'])
    expect(seqs(missed)).toEqual(range(hello.last_seq + 1, hello.last_seq + 3))
    await resumed.close()
  } finally {
    ctx.realtime.stop('test over')
    await app.stop(true)
    ctx.db.close()
  }
})
