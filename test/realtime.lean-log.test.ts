// The lean event log (docs/realtime.md#the-event-log): a reading's `created` event row holds no copy of the
// reading; replay and the log readers rebuild its frame from the readings row, byte for byte, and every
// change or deletion of a reading writes the frame whole into its row first. On SQLite and PostgreSQL.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { asc, eq, inArray } from 'drizzle-orm'
import { events, readings } from '../src/db/schema'
import { pruneReadings } from '../src/modules/history/retention'
import { readAfter } from '../src/realtime/event-log'
import { materializeReadings } from '../src/realtime/reading-frames'
import {
  createSensor,
  createTestDatabase,
  startTestServer,
  until,
  type TestServer,
} from './helpers'

setDefaultTimeout(60_000)

const HOUR = 3_600_000
const iso = (ms: number) => new Date(ms).toISOString()

/** A WebSocket that keeps every text frame exactly as it arrived. */
async function rawClient(server: TestServer, query: Record<string, string | number>) {
  const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))
  const socket = new WebSocket(`${server.base.replace(/^http/, 'ws')}/api/v1/ws?${qs}`)
  const frames: string[] = []
  socket.addEventListener('message', (e) => frames.push(String(e.data)))
  await new Promise((resolve, reject) => {
    socket.addEventListener('open', resolve, { once: true })
    socket.addEventListener('error', reject, { once: true })
  })
  await until(async () => frames.length > 0, 'the connection message')
  const hello = JSON.parse(frames[0]!)
  return {
    hello,
    /** Event frames (not connection messages) as text, in arrival order. */
    events: () =>
      frames.filter(
        (f) => f.startsWith('{"type":"entity_event"') || f.startsWith('{"type":"system_event"'),
      ),
    close: () => socket.close(),
  }
}

/** Sends a marker on general and waits until every client has it (events arrive in seq order). */
async function settle(server: TestServer, clients: { events(): string[] }[]) {
  const marker = `marker-${crypto.randomUUID()}`
  const res = await server.api('POST', `/api/v1/ws/test-event?channel=general&message=${marker}`)
  expect(res.status).toBe(200)
  for (const client of clients)
    await until(async () => client.events().some((f) => f.includes(marker)), `marker ${marker}`)
}

/** The `created` event of a reading as the log reads it back (rebuilt from the row while it is lean). */
const loggedCreated = async (server: TestServer, id: number) =>
  (await readAfter(server.ctx.db.read, 0, 1000)).find((r) =>
    r.payload.startsWith(
      `{"type":"entity_event","entity_type":"reading","event_type":"created","entity_id":${id},`,
    ),
  )

/** Five measurements in the order a device sends them (not jsonb's). */
const measurements = (i: number) => ({
  temperatura: 20 + (i % 7) * 0.37,
  humedad: 40 + (i % 11) * 1.5,
  co2: 400 + i,
  presion: 1013.2 - i / 10,
  pm25: (i % 13) / 3,
})

/** A new sensor's reading of `measurements(i)`, and the frame a client on its channel got live. */
async function oneLiveReading(server: TestServer, i: number) {
  const sensor = await createSensor(server)
  const live = await rawClient(server, { channel: `readings:${sensor}` })
  const created = await server.api('POST', '/api/v1/readings', {
    sensor_id: sensor,
    values: measurements(i),
  })
  expect(created.status).toBe(201)
  await until(async () => live.events().length === 1, 'the live frame')
  return { sensor, live, created, frame: live.events()[0]! }
}

const engines = [
  {
    name: 'SQLite',
    start: async (env: Record<string, string> = {}) => {
      const server = await startTestServer(env)
      return { server, url: undefined as string | undefined, drop: async () => {} }
    },
  },
  {
    name: 'PostgreSQL',
    start: async (env: Record<string, string> = {}) => {
      const db = await createTestDatabase()
      const server = await startTestServer({ DATABASE_URL: db.url, ...env })
      return { server, url: db.url as string | undefined, drop: db.drop }
    },
  },
]

const cleanups: (() => Promise<unknown>)[] = []
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup()
})

describe.each(engines)('on $name', ({ start }) => {
  test('a client resuming with since gets the frames a live client got, byte for byte: readings unedited (rebuilt) and edited, deleted, pruned or sensor-deleted (materialized)', async () => {
    const { server, drop } = await start({
      READINGS_RETENTION: '2h',
      READINGS_RETENTION_INTERVAL: '86400',
    })
    cleanups.push(drop, () => server.stop())
    const live = await rawClient(server, { channel: 'general' })
    const kept = await createSensor(server)
    const doomed = await createSensor(server)
    const now = Date.now()

    const batch = await server.api(
      'POST',
      '/api/v1/readings/batch',
      Array.from({ length: 40 }, (_, i) => ({
        sensor_id: i % 4 === 3 ? doomed : kept,
        values: measurements(i),
        timestamp: iso(now - 60_000 + i * 1000),
      })),
    )
    expect(batch.status).toBe(201)
    const single = await server.api('POST', '/api/v1/readings', {
      sensor_id: kept,
      temperatura: 21.5,
      values: { co2: 415 },
    })
    expect(single.status).toBe(201)
    // Old enough for retention (2 h, cut aligned down to the hour).
    const old = await server.api(
      'POST',
      '/api/v1/readings/batch',
      Array.from({ length: 10 }, (_, i) => ({
        sensor_id: kept,
        values: measurements(100 + i),
        timestamp: iso(now - 5 * HOUR + i * 60_000),
      })),
    )
    expect(old.status).toBe(201)
    const ids = batch.body.map((r: { id: number }) => r.id) as number[]
    const oldIds = old.body.map((r: { id: number }) => r.id) as number[]

    // Before any change: the readings' created events are stored without their frames.
    const lean = await server.ctx.db.read
      .select({ payload: events.payload, reading_id: events.reading_id })
      .from(events)
      .where(inArray(events.reading_id, [...ids, single.body.id, ...oldIds]))
    expect(lean).toHaveLength(ids.length + 1 + oldIds.length)
    expect(lean.every((row) => row.payload === '')).toBe(true)

    expect(
      (
        await server.api('PUT', `/api/v1/readings/${ids[0]}`, {
          sensor_id: kept,
          values: { co2: 1 },
          timestamp: iso(now),
        })
      ).status,
    ).toBe(200)
    expect(
      (await server.api('PATCH', `/api/v1/readings/${ids[1]}`, { values: { pm25: null, co2: 2 } }))
        .status,
    ).toBe(200)
    expect((await server.api('DELETE', `/api/v1/readings/${ids[2]}`)).status).toBe(204)
    expect((await server.api('DELETE', `/api/v1/sensors/${doomed}`)).status).toBe(204)
    // Rollups must cover the old readings before retention may delete them.
    await until(async () => {
      await pruneReadings(server.ctx.db, 2 * HOUR)
      const left = await server.ctx.db.read
        .select({ id: readings.id })
        .from(readings)
        .where(inArray(readings.id, oldIds))
      return left.length === 0
    }, 'retention to prune the old readings')
    await settle(server, [live])

    const resumed = await rawClient(server, {
      channel: 'general',
      since: live.hello.last_seq,
      epoch: live.hello.epoch,
    })
    expect(resumed.hello).toMatchObject({ recovered: true })
    await settle(server, [live, resumed])
    const sent = live.events()
    expect(sent.length).toBeGreaterThan(55)
    expect(resumed.events()).toEqual(sent)

    // The log's own reader (publisher catch-up, instances sharing PostgreSQL) agrees too.
    const log = await readAfter(server.ctx.db.read, live.hello.last_seq, 100_000)
    const general = log.filter((row) => row.channels.includes(' general ')).map((r) => r.payload)
    expect(general).toEqual(sent.slice(0, general.length))

    // Changed or deleted readings' events now hold their whole frame; the untouched ones are still lean.
    const rows = await server.ctx.db.read
      .select({ payload: events.payload, reading_id: events.reading_id })
      .from(events)
      .orderBy(asc(events.seq))
    const materialized = rows.filter((r) => r.payload.includes('"event_type":"created"'))
    const touched = [ids[0], ids[1], ids[2], ...ids.filter((_, i) => i % 4 === 3), ...oldIds]
    for (const id of touched)
      expect(
        materialized.some((r) =>
          r.payload.includes(`"reading","event_type":"created","entity_id":${id},`),
        ),
      ).toBe(true)
    expect(rows.filter((r) => r.reading_id !== null)).toHaveLength(
      ids.length + 1 + oldIds.length - new Set(touched).size,
    )
    live.close()
    resumed.close()
  })

  test('an edit that skipped materializing would show in replay: the rebuild reads the reading as it is now', async () => {
    const { server, drop } = await start()
    cleanups.push(drop, () => server.stop())
    const { live, created, frame } = await oneLiveReading(server, 1)
    // Changed behind the service's back (no materializing): the rebuilt frame differs from the sent one.
    await server.ctx.db.transaction((tx) =>
      tx
        .update(readings)
        .set({ values: { co2: 9 } })
        .where(eq(readings.id, created.body.id)),
    )
    const rebuilt = await loggedCreated(server, created.body.id)
    expect(rebuilt?.payload).not.toBe(frame)
    // What the services do before a change: write the frame whole, from the row as it was sent.
    await server.ctx.db.transaction(async (tx) => {
      await tx
        .update(readings)
        .set({ values: created.body.values })
        .where(eq(readings.id, created.body.id))
      await materializeReadings(tx, eq(readings.id, created.body.id))
      await tx
        .update(readings)
        .set({ values: { co2: 9 } })
        .where(eq(readings.id, created.body.id))
    })
    const kept = await loggedCreated(server, created.body.id)
    expect(kept?.payload).toBe(frame)
    live.close()
  })

  test('an event row written before this layout (the whole frame, no reading_id) replays as it was, also after its reading changes', async () => {
    const { server, drop } = await start()
    cleanups.push(drop, () => server.stop())
    const { sensor, live, created } = await oneLiveReading(server, 2)
    // What the previous version stored: the frame itself.
    await server.ctx.db.transaction((tx) =>
      tx
        .update(events)
        .set({ payload: live.events()[0]!, reading_id: null })
        .where(eq(events.reading_id, created.body.id)),
    )
    const put = await server.api('PUT', `/api/v1/readings/${created.body.id}`, {
      sensor_id: sensor,
      values: { co2: 3 },
      timestamp: created.body.timestamp,
    })
    expect(put.status).toBe(200)
    await until(async () => live.events().length === 2, 'the update')
    const resumed = await rawClient(server, {
      channel: `readings:${sensor}`,
      since: live.hello.last_seq,
      epoch: live.hello.epoch,
    })
    await until(async () => resumed.events().length === 2, 'the replay')
    expect(resumed.events()).toEqual(live.events())
    live.close()
    resumed.close()
  })
})

test('on PostgreSQL an instance that reads the shared log (no Redis) sends the frames the writing instance sent', async () => {
  const db = await createTestDatabase()
  const a = await startTestServer({ DATABASE_URL: db.url, INSTANCE_ID: 'lean-a' })
  const b = await startTestServer({ DATABASE_URL: db.url, INSTANCE_ID: 'lean-b' })
  cleanups.push(
    db.drop,
    () => a.stop(),
    () => b.stop(),
  )
  const sensor = await createSensor(a)
  const onA = await rawClient(a, { channel: 'readings' })
  const onB = await rawClient(b, { channel: 'readings' })
  const res = await a.api(
    'POST',
    '/api/v1/readings/batch',
    Array.from({ length: 25 }, (_, i) => ({ sensor_id: sensor, values: measurements(i) })),
  )
  expect(res.status).toBe(201)
  await until(async () => onB.events().length >= 25 && onA.events().length >= 25, 'both instances')
  expect(onB.events()).toEqual(onA.events())
  expect(onA.events()[0]).toContain('"values":{"co2":')
  onA.close()
  onB.close()
})
