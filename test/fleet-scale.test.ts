// The fleet's state on two instances sharing PostgreSQL and Redis: one instance decides, once, that a
// sensor is offline; a snapshot taken on one instance while the other writes goes on with no gap or
// double; the last-value store ends right with writers on both. (Pinned in matrix.test.ts: it picks
// its databases itself.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { and, eq } from 'drizzle-orm'
import { anomalies } from '../src/db/schema'
import { sweepOffline } from '../src/modules/liveness/service'
import { inChannels, readAfter } from '../src/realtime/event-log'
import { settle, startPair, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(60_000)

let a: TestServer
let b: TestServer
let stop = async () => {}

beforeAll(async () => {
  ;({ a, b, stop } = await startPair(['fleet-a', 'fleet-b']))
})
afterAll(() => stop())

const log = async (server: TestServer) =>
  (await readAfter(server.ctx.db.read, 0, 1e9)).map((row) => ({
    seq: row.seq,
    channels: row.channels,
    message: JSON.parse(row.payload),
  }))

describe('liveness on two instances', () => {
  test('both sweep, one decides: each silent sensor goes offline once, with one anomaly, seen once on every instance', async () => {
    const ids: number[] = []
    for (let i = 0; i < 6; i++)
      ids.push(
        (await a.api('POST', '/api/v1/sensors', { tipo: 'nodo', modelo: 'm', offline_after: 1 }))
          .body.id,
      )
    const onA = await a.ws('/api/v1/ws', { channel: 'sensors' })
    const onB = await b.ws('/api/v1/ws', { channel: 'anomalies,sensors' })
    await Promise.all([onA.connected(), onB.connected()])
    for (const [i, id] of ids.entries())
      expect(
        (await (i % 2 ? b : a).api('POST', '/api/v1/readings', { sensor_id: id, values: { v: i } }))
          .status,
      ).toBe(201)
    for (const client of [onA, onB])
      for (const id of ids)
        await client.event(
          (m) => m.entity_id === id && m.entity_type === 'sensor' && m.data.status === 'offline',
          15_000,
        )
    // Several more sweeps on both instances: nothing more happens.
    await Bun.sleep(2500)
    await settle(a, [onA, onB], 'sensors', 15_000)

    const offline = (await log(a)).filter(
      (e) =>
        e.message.entity_type === 'sensor' &&
        e.message.metadata?.liveness === 'offline' &&
        ids.includes(e.message.entity_id),
    )
    expect(offline.map((e) => e.message.entity_id).sort()).toEqual([...ids].sort())
    for (const client of [onA, onB]) {
      const seen = client
        .receivedEvents()
        .filter((m) => m.entity_type === 'sensor' && m.metadata?.liveness === 'offline')
      expect(seen.map((m) => m.seq)).toEqual(offline.map((e) => e.seq))
    }
    const rows = await a.ctx.db.read.select().from(anomalies).where(eq(anomalies.kind, 'offline'))
    expect(rows.map((r) => r.sensor_id).sort()).toEqual([...ids].sort())
    expect(
      onB
        .receivedEvents()
        .filter((m) => m.event_type === 'anomaly_detected')
        .map((m) => m.entity_id),
    ).toEqual(rows.sort((x, y) => x.id - y.id).map((r) => r.id))

    // A reading through the other instance brings one back and resolves its anomaly, once.
    await b.api('POST', '/api/v1/readings', { sensor_id: ids[0], values: { v: 9 } })
    const online = await onA.event(
      (m) => m.entity_id === ids[0] && m.entity_type === 'sensor' && m.data.status === 'online',
    )
    expect(online.metadata.liveness).toBe('online')
    const resolved = await onB.event(
      (m) =>
        m.entity_type === 'anomaly' && m.event_type === 'updated' && m.data.sensor_id === ids[0],
    )
    expect(resolved.data).toMatchObject({ status: 'resolved', kind: 'offline' })
    await onA.close()
    await onB.close()
  })

  test('sweeps that run at the same moment on both instances turn a silent sensor offline once', async () => {
    const id = (
      await a.api('POST', '/api/v1/sensors', { tipo: 'nodo', modelo: 'm', offline_after: 3600 })
    ).body.id
    await a.api('POST', '/api/v1/readings', { sensor_id: id, values: { v: 1 } })
    // Both look at the same instant, an hour past the limit: both find it overdue, one turns it offline.
    const [first, second] = await Promise.all([
      sweepOffline(a.ctx, Date.now() + 7_200_000),
      sweepOffline(b.ctx, Date.now() + 7_200_000),
    ])
    expect(first + second).toBeGreaterThanOrEqual(1)
    const rows = await a.ctx.db.read
      .select()
      .from(anomalies)
      .where(and(eq(anomalies.kind, 'offline'), eq(anomalies.sensor_id, id)))
    expect(rows).toHaveLength(1)
  })
})

describe('snapshot and latest values on two instances', () => {
  test('a snapshot on one instance while the other writes goes on from its seq with every event once', async () => {
    const sensors: number[] = []
    for (let i = 0; i < 3; i++)
      sensors.push((await a.api('POST', '/api/v1/sensors', { tipo: 'aire', modelo: 'm' })).body.id)
    let running = true
    let n = 0
    const writers = sensors.map(async (sensor, w) => {
      const server = w === 2 ? b : a
      while (running) {
        n += 1
        const res = await server.api('POST', '/api/v1/readings', {
          sensor_id: sensor,
          values: { co2: n, temperatura: w },
        })
        expect(res.status).toBe(201)
      }
    })
    const clients = []
    for (let i = 0; i < 4; i++) {
      clients.push(await b.ws('/api/v1/ws', { channel: 'readings', snapshot: 'latest' }))
      const before = n
      while (n < before + 3) await Bun.sleep(5)
    }
    running = false
    await Promise.all(writers)
    await settle(a, clients, 'readings', 15_000)

    const all = await log(a)
    for (const client of clients) {
      const [greeting, snapshot, ...rest] = client.messages
      expect(greeting.type).toBe('connection')
      expect(snapshot.type).toBe('snapshot')
      const got = rest.filter((m) => m.type === 'entity_event' || m.type === 'system_event')
      const wanted = all
        .filter((e) => e.seq > snapshot.seq && inChannels(e.channels, ['readings']))
        .map((e) => e.message)
      expect(got).toEqual(wanted)
      // The snapshot holds each sensor's newest co2 among the readings up to its seq.
      for (const sensor of sensors) {
        const upTo = all.filter(
          (e) =>
            e.seq <= snapshot.seq &&
            e.message.entity_type === 'reading' &&
            e.message.data.sensor_id === sensor,
        )
        const entry = snapshot.data.find((s: { sensor_id: number }) => s.sensor_id === sensor)
        if (upTo.length === 0) expect(entry.values).toEqual({})
        else expect(entry.values.co2.value).toBe(upTo.at(-1)!.message.data.values.co2)
      }
      await client.close()
    }
  })

  test('writers on both instances end with the newest value of each sensor variable in the store', async () => {
    const sensor = (await a.api('POST', '/api/v1/sensors', { tipo: 'aire', modelo: 'm' })).body.id
    const base = Date.UTC(2025, 0, 1)
    const writes = Array.from({ length: 60 }, (_, i) =>
      (i % 2 ? a : b).api('POST', '/api/v1/readings', {
        sensor_id: sensor,
        values: { co2: i, [i % 3 ? 'ruido' : 'lux']: i },
        timestamp: new Date(base + ((i * 7) % 13) * 1000).toISOString(),
      }),
    )
    const stored = (await Promise.all(writes)).map((r) => r.body)
    const newest: Record<string, { value: number; timestamp: string }> = {}
    const best: Record<string, { t: number; id: number }> = {}
    for (const r of stored)
      for (const [name, value] of Object.entries(r.values as Record<string, number>)) {
        const t = Date.parse(r.timestamp)
        const current = best[name]
        if (!current || t > current.t || (t === current.t && r.id > current.id)) {
          best[name] = { t, id: r.id }
          newest[name] = { value, timestamp: r.timestamp }
        }
      }
    for (const server of [a, b])
      expect((await server.api('GET', `/api/v1/sensors/${sensor}/latest`)).body.values).toEqual(
        newest,
      )
  })
})
