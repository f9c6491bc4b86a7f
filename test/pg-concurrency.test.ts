// Many writers on two instances sharing PostgreSQL and Redis, readings of the same sensors written side
// by side (scoped writes, no deployment-wide lock), with plain writes mixed in: the log stays gap-free,
// every acknowledged reading is in it once, every subscriber on either instance gets exactly its
// channel's part of the log in seq order, a client resuming on the other instance gets exactly the
// rest, and each sensor variable's detector saw its readings as one writer at a time would have.
// (Pinned in matrix.test.ts: it picks its databases itself.)
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { detectorState, eventMeta, readings, rollupsMinute } from '../src/db/schema'
import { catchUp, historyStateOf } from '../src/modules/history/rollups'
import { unpackState } from '../src/intelligence/packed'
import { inChannels, readAfter } from '../src/realtime/event-log'
import { settle, startPair, until, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(120_000)

let a: TestServer
let b: TestServer
let stop = async () => {}

beforeAll(async () => {
  ;({ a, b, stop } = await startPair(['writers-a', 'writers-b'], { ANOMALY_WARMUP_READINGS: '10' }))
})
afterAll(() => stop())

const delivered = (client: WsClient) =>
  client.messages.filter((m) => m.type === 'entity_event' || m.type === 'system_event')

describe('many writers on two instances', () => {
  test('gap-free seqs, every acknowledged reading once, every stream equal to the log, exact resume across instances, detectors serialized per sensor', async () => {
    const sensors: number[] = []
    for (let i = 0; i < 8; i++) {
      const res = await a.api('POST', '/api/v1/sensors', { tipo: 'aire', modelo: 'm' })
      expect(res.status).toBe(201)
      sensors.push(res.body.id)
    }
    const watched = sensors[0]!
    const subscriptions: [TestServer, string][] = [
      [a, 'general'],
      [a, 'general'],
      [a, `readings:${watched}`],
      [b, 'general'],
      [b, 'readings'],
      [b, 'anomalies'],
    ]
    const clients: { client: WsClient; channel: string; from: number }[] = []
    for (const [server, channel] of subscriptions) {
      const client = await server.ws('/api/v1/ws', { channel })
      const hello = await client.connected()
      clients.push({ client, channel, from: hello.last_seq })
    }
    // This one leaves halfway and comes back on the other instance with since.
    const leaving = await a.ws('/api/v1/ws', { channel: 'general' })
    const leavingHello = await leaving.connected()

    const acknowledged: number[] = []
    const base = Date.UTC(2025, 0, 1)
    let tick = 0
    // Each sensor's readings leave in time order (spikes now and then); writers racing each other
    // commit some out of that order, and the detector skips a reading older than one it has seen.
    const reading = (sensor: number) => {
      tick += 1
      return {
        sensor_id: sensor,
        timestamp: new Date(base + tick * 1000).toISOString(),
        values: {
          co2: tick % 29 === 0 ? 5000 : 400 + (tick % 7),
          temperatura: 20 + (tick % 5) / 10,
        },
      }
    }
    const pick = () => sensors[Math.floor(Math.random() * sensors.length)]!
    const writer = async (server: TestServer, w: number) => {
      for (let round = 0; round < 12; round++) {
        if (w % 4 === 3 && round % 4 === 0) {
          // A plain write (the sensor row, no scope) between the scoped ones.
          const res = await server.api('PATCH', `/api/v1/sensors/${pick()}`, {
            modelo: `m-${w}-${round}`,
          })
          expect(res.status).toBe(200)
          continue
        }
        if (round % 2 === 0) {
          const res = await server.api('POST', '/api/v1/readings', reading(pick()))
          expect(res.status).toBe(201)
          acknowledged.push(res.body.id)
        } else {
          const batch = Array.from({ length: 15 }, () => reading(pick()))
          const res = await server.api('POST', '/api/v1/readings/batch', batch)
          expect(res.status).toBe(201)
          for (const r of res.body) acknowledged.push(r.id)
        }
      }
    }
    const writers: Promise<void>[] = []
    for (let w = 0; w < 16; w++) writers.push(writer(w % 2 ? a : b, w))
    // Rollup passes on both instances back to back while the writers run, beside them.
    let writing = true
    const folders = [a, b].map(async (server) => {
      while (writing) await catchUp(server.ctx.db, 20)
    })
    // Halfway: the leaving client's last seen seq, then it goes.
    while (acknowledged.length < 600) await Bun.sleep(5)
    const seen = delivered(leaving)
    const lastSeen = seen.length > 0 ? seen.at(-1)!.seq : leavingHello.last_seq
    await leaving.close()
    await Promise.all(writers)
    writing = false
    await Promise.all(folders)
    const resumed = await b.ws('/api/v1/ws', {
      channel: 'general',
      since: lastSeen,
      epoch: leavingHello.epoch,
    })
    expect(await resumed.connected()).toMatchObject({ recovered: true })
    await settle(
      a,
      [...clients.filter((c) => c.channel === 'general').map((c) => c.client), resumed],
      'general',
      30_000,
    )

    const log = await readAfter(a.ctx.db.read, 0, 1e9)
    // Gap-free: 1..last_seq, each once.
    expect(log.map((e) => e.seq)).toEqual(Array.from({ length: log.length }, (_, i) => i + 1))
    const [meta] = await a.ctx.db.read.select().from(eventMeta)
    expect(meta!.last_seq).toBe(log.length)

    // Every acknowledged reading is stored and announced exactly once; nothing else was.
    const created = log
      .map((e) => JSON.parse(e.payload))
      .filter((m) => m.entity_type === 'reading' && m.event_type === 'created')
      .map((m) => m.entity_id as number)
    expect(created.length).toBe(acknowledged.length)
    expect(new Set(created)).toEqual(new Set(acknowledged))
    const stored = await a.ctx.db.read.select({ id: readings.id }).from(readings)
    expect(new Set(stored.map((r) => r.id))).toEqual(new Set(acknowledged))

    // Every stream is its channel's part of the log after its start, in seq order, frame for frame.
    for (const { client, channel, from } of clients) {
      const wanted = log.filter((e) => e.seq > from && inChannels(e.channels, [channel]))
      // Other channels have no marker: wait for as many frames as the log holds for them.
      if (channel !== 'general') await client.events(wanted.length, () => true, 30_000)
      expect(delivered(client).map((m) => JSON.stringify(m))).toEqual(wanted.map((e) => e.payload))
    }
    const rest = log.filter((e) => e.seq > lastSeen && inChannels(e.channels, ['general']))
    expect(delivered(resumed).map((m) => JSON.stringify(m))).toEqual(rest.map((e) => e.payload))
    expect(log.some((m) => JSON.parse(m.payload).entity_type === 'anomaly')).toBe(true)

    // One writer at a time per sensor: each detector counted exactly the readings it would have
    // checked in commit order (those not older than the newest before them), none lost to a race.
    const expected = new Map<string, number>()
    const newest = new Map<string, number>()
    for (const e of log) {
      const m = JSON.parse(e.payload)
      if (m.entity_type !== 'reading' || m.event_type !== 'created') continue
      const t = Date.parse(m.data.timestamp)
      for (const variable of Object.keys(m.data.values)) {
        const key = `${m.data.sensor_id}:${variable}`
        if (t < (newest.get(key) ?? -Infinity)) continue
        newest.set(key, t)
        expected.set(key, (expected.get(key) ?? 0) + 1)
      }
    }
    // Each instance writes back what it kept in memory (a sensor the other wrote since is skipped).
    await Promise.all([a.ctx.intelligence.states.flush(), b.ctx.intelligence.states.flush()])
    const states = await a.ctx.db.read.select().from(detectorState)
    // Stored without their keys (packed.ts), every one.
    expect(states.every((s) => Array.isArray(s.state))).toBe(true)
    const counted = new Map(
      states.map((s) => [
        `${s.sensor_id}:${s.variable}`,
        (unpackState(s.state) as { n: number }).n,
      ]),
    )
    expect(counted).toEqual(expected)

    // The rollup workers folded while the writers ran, beside them: once caught up, the minute rollups
    // count every stored measurement once (a reading committed below a folded id would be missing).
    // A pass folds only what no writer can still commit below (another pass in flight counts as one),
    // so passes run until the watermark reaches the last reading.
    const top = Math.max(...acknowledged)
    await until(async () => {
      await catchUp(a.ctx.db)
      return (await historyStateOf(a.ctx.db.read)).watermark >= top
    }, 'the rollups to catch up')
    const raw = await a.ctx.db.read
      .select({ sensor_id: readings.sensor_id, values: readings.values })
      .from(readings)
    const measured = new Map<string, number>()
    for (const r of raw)
      for (const variable of Object.keys(r.values))
        measured.set(
          `${r.sensor_id}:${variable}`,
          (measured.get(`${r.sensor_id}:${variable}`) ?? 0) + 1,
        )
    const folded = new Map<string, number>()
    for (const r of await a.ctx.db.read.select().from(rollupsMinute))
      folded.set(
        `${r.sensor_id}:${r.variable}`,
        (folded.get(`${r.sensor_id}:${r.variable}`) ?? 0) + r.count,
      )
    expect(folded).toEqual(measured)

    for (const { client } of clients) await client.close()
    await resumed.close()
  })

  test('event retention runs beside a reading write in progress instead of waiting for it to finish', async () => {
    const sensor = (await a.api('POST', '/api/v1/sensors', { tipo: 'aire', modelo: 'm' })).body.id
    for (let i = 0; i < 5; i++)
      expect(
        (await a.api('POST', '/api/v1/readings', { sensor_id: sensor, temperatura: 20 + i }))
          .status,
      ).toBe(201)
    // A write scoped to the sensor, as a reading batch is, held open once it has its locks.
    let release = () => {}
    const held = new Promise<void>((resolve) => (release = resolve))
    let started = () => {}
    const open = new Promise<void>((resolve) => (started = resolve))
    const writing = a.ctx.db.transaction(
      async (tx) => {
        await tx.select().from(eventMeta)
        started()
        await held
      },
      undefined,
      { keys: [sensor] },
    )
    await open
    try {
      // Everything is past the age limit two days from now.
      const pruned = await Promise.race([
        a.ctx.realtime.prune(Date.now() + 2 * 86_400_000),
        Bun.sleep(10_000).then(() => 'waited for the write'),
      ])
      expect(typeof pruned).toBe('number')
      expect(pruned as number).toBeGreaterThan(0)
    } finally {
      release()
      await writing
    }
  })
})
