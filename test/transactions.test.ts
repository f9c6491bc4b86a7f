// Change and event are one: a rollback stores and emits nothing, and every event in the log went out as is.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { asc } from 'drizzle-orm'
import type { Tx } from '../src/db'
import { events, readings, sensors } from '../src/db/schema'
import { readAfter } from '../src/realtime/event-log'
import type { Emit } from '../src/realtime/emitter'
import { eventState, expectUnchanged, rowCount } from './assert'
import { settle, startTestServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
/** Every frame the general client received, exactly as sent. */
const frames: string[] = []

beforeAll(async () => {
  server = await startTestServer()
  general = await server.ws('/api/v1/ws', { channel: 'general' })
  general.socket.addEventListener('message', (e) => frames.push(String(e.data)))
  await general.connected()
})
afterAll(() => server.stop())

const isEntityEvent = (m: Record<string, any>) => m.type === 'entity_event'

/** Inside a transaction: inserts a sensor and emits its created event, as the service would; returns the time used. */
async function insertSensor(tx: Tx, emit: Emit, modelo: string) {
  const now = Date.now()
  const [row] = await tx
    .insert(sensors)
    .values({ tipo: 't', modelo, created_at: now, updated_at: now })
    .returning()
  emit({
    entity_type: 'sensor',
    event_type: 'created',
    entity_id: row!.id,
    data: { ...row },
    action: 'create_sensor',
  })
  return now
}

/** Runs `run`, then proves with a marker that the general channel got no entity event from it. */
async function expectSilence(run: () => Promise<void>) {
  await settle(server, general, 'general')
  const before = await eventState(server)
  const mark = general.messages.length
  await run()
  await settle(server, general, 'general')
  expect(general.messages.slice(mark).filter(isEntityEvent)).toEqual([])
  const marker = 1
  expect((await eventState(server)).rows).toBe(before.rows + marker)
}

describe('a rolled-back change', () => {
  test('a batch with one bad item stores no reading and emits no event', async () => {
    const sensor = (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })).body
    const stored = await rowCount(server, readings)
    await expectSilence(async () => {
      const res = await server.api('POST', '/api/v1/readings/batch', [
        { sensor_id: sensor.id, temperatura: 1 },
        { sensor_id: sensor.id, temperatura: 2 },
        { sensor_id: sensor.id + 1000, temperatura: 3 },
      ])
      expect(res.status).toBe(422)
      expect(res.body.field).toBe('[2].sensor_id')
    })
    expect(await rowCount(server, readings)).toBe(stored)
  })

  test('a write that throws inside emitter.transact after emitting stores nothing and emits nothing', async () => {
    const stored = await rowCount(server, sensors)
    await expectSilence(async () => {
      const attempt = server.ctx.emitter.transact(async (tx, emit) => {
        await insertSensor(tx, emit, 'fantasma')
        throw new Error('the second step failed')
      })
      await expect(attempt).rejects.toThrow('the second step failed')
    })
    expect(await rowCount(server, sensors)).toBe(stored)
    const ghosts = await server.api('GET', '/api/v1/sensors?tipo=t')
    expect(ghosts.body.some((s: { modelo: string }) => s.modelo === 'fantasma')).toBe(false)
  })

  test('a database error inside emitter.transact rolls back the writes before it', async () => {
    await expectUnchanged(server, sensors, async () => {
      const attempt = server.ctx.emitter.transact(async (tx, emit) => {
        const now = await insertSensor(tx, emit, 'antes del fallo')
        // A reading of a sensor that does not exist breaks the foreign key.
        await tx.insert(readings).values({
          sensor_id: 987_654,
          values: { temperatura: 1 },
          timestamp: now,
          created_at: now,
        })
      })
      await expect(attempt).rejects.toThrow()
    })
  })

  test('the server keeps working after a rollback, and seq continues without a gap', async () => {
    const before = server.ctx.realtime.publisher.lastSeq
    const res = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'después' })
    expect(res.status).toBe(201)
    const event = await general.event((m) => m.entity_id === res.body.id && isEntityEvent(m))
    expect(event.seq).toBe(before + 1)
  })
})

describe('a committed change', () => {
  test('emits its events in order, after commit, with consecutive seqs', async () => {
    const mark = general.messages.length
    const result = await server.ctx.emitter.transact(async (tx, emit) => {
      const now = Date.now()
      const rows = await tx
        .insert(sensors)
        .values([
          { tipo: 'par', modelo: 'a', created_at: now, updated_at: now },
          { tipo: 'par', modelo: 'b', created_at: now, updated_at: now },
        ])
        .returning()
      for (const row of rows)
        emit({
          entity_type: 'sensor',
          event_type: 'created',
          entity_id: row.id,
          data: { id: row.id, modelo: row.modelo },
          action: 'create_sensor',
        })
      return rows.map((r) => r.id)
    })
    await settle(server, general, 'general')
    const got = general.messages.slice(mark).filter(isEntityEvent)
    expect(got.map((m) => m.entity_id)).toEqual(result)
    expect(got[1]!.seq).toBe(got[0]!.seq + 1)
  })

  test('concurrent writes each emit one event, in the order of their seqs', async () => {
    const mark = general.messages.length
    const created = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        server.api('POST', '/api/v1/sensors', { tipo: 'carrera', modelo: `m${i}` }),
      ),
    )
    expect(created.every((r) => r.status === 201)).toBe(true)
    await settle(server, general, 'general')
    const got = general.messages.slice(mark).filter(isEntityEvent)
    expect(got.map((m) => m.entity_id).sort((a, b) => a - b)).toEqual(
      created.map((r) => r.body.id).sort((a, b) => a - b),
    )
    got.forEach((m, i) => i > 0 && expect(m.seq).toBe(got[i - 1]!.seq + 1))
  })
})

describe('the event log', () => {
  test('holds exactly one row per emitted event, with the payload the client received', async () => {
    const location = (await server.api('POST', '/api/v1/locations', { nombre: 'Log' })).body
    const sensor = (
      await server.api('POST', '/api/v1/sensors', {
        tipo: 't',
        modelo: 'log',
        location_id: location.id,
      })
    ).body
    await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: sensor.id, temperatura: 1 },
      { sensor_id: sensor.id, humedad: 2 },
    ])
    await server.api('POST', '/api/v1/anomalies', {
      sensor_id: sensor.id,
      variable: 'humedad',
      value: 2,
    })
    await server.api('POST', '/api/v1/predictions', {
      sensor_id: sensor.id,
      variable: 'humedad',
      horizon_minutes: 10,
    })
    await server.api('DELETE', `/api/v1/locations/${location.id}`)
    await server.api('DELETE', `/api/v1/sensors/${sensor.id}`)
    await settle(server, general, 'general')

    const received = frames.filter((f) => !f.startsWith('{"type":"connection"'))
    const first = JSON.parse(received[0]!).seq as number
    // As read back: a reading's `created` frame is rebuilt from its row (reading-frames.ts).
    const rows = await readAfter(server.ctx.db.read, first - 1, 1e9)
    expect(rows.map((r) => r.payload)).toEqual(received)
    expect(rows.map((r) => r.seq)).toEqual(received.map((f) => JSON.parse(f).seq))
    for (const row of rows) expect(row.channels).toContain(' general ')
  })

  test('starts with the start-up system event as seq 1', async () => {
    const [row] = await server.ctx.db.read.select().from(events).orderBy(asc(events.seq)).limit(1)
    expect(row!.seq).toBe(1)
    expect(JSON.parse(row!.payload)).toMatchObject({
      type: 'system_event',
      level: 'info',
      message: 'Sistema iniciado correctamente',
      seq: 1,
    })
  })
})
