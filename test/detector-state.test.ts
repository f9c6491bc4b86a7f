// Detector states in the database: kept in memory and written back in the background and at shutdown (a
// deleted sensor's skipped); on PostgreSQL read again when another instance wrote the sensor, with the
// readings they lag behind checked again. What is stored is what the detector holds. And SQLite's write-ahead log is checkpointed by its own thread while it runs.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { Database as SQLite } from 'bun:sqlite'
import { statSync } from 'node:fs'
import { join } from 'node:path'
import { sql } from 'drizzle-orm'
import { pgExecute } from '../src/db/postgres'
import { detectorState } from '../src/db/schema'
import { revive } from '../src/intelligence'
import { unpackState } from '../src/intelligence/packed'
import { createSensor, startTestServer, TEST_DATABASE, type TestServer } from './helpers'

setDefaultTimeout(30_000)

const START = Date.UTC(2025, 6, 1)
let server: TestServer

beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

/** `n` readings of a calm series, one a minute, in batches. */
async function feed(sensorId: number, n: number, to = server) {
  const batch = Array.from({ length: n }, (_, i) => ({
    sensor_id: sensorId,
    temperatura: 21 + Math.sin(i / 7) + (i % 3) * 0.01,
    timestamp: new Date(START + i * 60_000).toISOString(),
  }))
  const res = await to.api('POST', '/api/v1/readings/batch', batch)
  expect(res.status).toBe(201)
}

const stored = async () =>
  new Map(
    (await server.ctx.db.read.select().from(detectorState)).map((row) => [
      `${row.sensor_id}:${row.variable}`,
      // As the server reads it back: unpacked, its season (PostgreSQL) put back in its places.
      revive(row),
    ]),
  )

describe('detector states', () => {
  test('once written back, the database holds the very state the detector has', async () => {
    const id = await createSensor(server)
    await feed(id, 120)
    await server.ctx.intelligence.states.flush()
    const { db, intelligence } = server.ctx
    const live = await db.transaction((tx) => intelligence.states.take(tx, [id]))
    const row = (await stored()).get(`${id}:temperatura`)
    expect(row?.n).toBe(120)
    expect(JSON.stringify(row)).toBe(JSON.stringify(live.get(`${id}:temperatura`)))
  })

  test('a sensor deleted before its states were written back: they are dropped, nothing fails', async () => {
    const kept = await createSensor(server)
    const gone = await createSensor(server)
    await feed(kept, 40)
    await feed(gone, 40)
    expect((await server.api('DELETE', `/api/v1/sensors/${gone}`)).status).toBe(204)
    await server.ctx.intelligence.states.flush()
    const rows = await stored()
    expect(rows.has(`${gone}:temperatura`)).toBe(false)
    expect(rows.get(`${kept}:temperatura`)?.n).toBe(40)
    // The instance goes on detecting for the sensors that remain.
    await feed(kept, 41)
  })
})

// On a PostgreSQL server of their own, whatever TEST_DATABASE says (PostgreSQL runs wherever the tests do).
describe('PostgreSQL detector states', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer({}, { postgres: true })
  })
  afterAll(() => server?.stop())

  const rowOf = async (id: number) => {
    await server.ctx.intelligence.states.flush()
    const [row] = await pgExecute(
      server.ctx.db.read,
      sql`select rev, state::text as state, season::text as season from detector_state
        where sensor_id = ${id} and variable = 'temperatura'`,
    )
    return {
      rev: String(row!.rev),
      state: unpackState(JSON.parse(String(row!.state))) as { n: number; envelope: unknown },
      season: JSON.parse(String(row!.season)),
    }
  }
  const mark = (id: number) =>
    pgExecute(
      server.ctx.db.read,
      sql`update detector_state set season = jsonb_set(season::jsonb, '{mark}', 'true')::json where sensor_id = ${id}`,
    )
  const post = (id: number, minute: number, temperatura: number) =>
    server.api('POST', '/api/v1/readings', {
      sensor_id: id,
      temperatura,
      timestamp: new Date(START + minute * 60_000).toISOString(),
    })

  test('the season (daily profile means, envelope) is written only when it changes', async () => {
    const id = await createSensor(server)
    await feed(id, 110, server)
    const first = await rowOf(id)
    expect(first.state.envelope).toBe(0)
    expect(first.season.m).toHaveLength(48)
    expect(first.state.n).toBe(110)
    // Minute 110 is in the last reading's half-hour and hour, at its value: the season stays as it is,
    // so the write leaves it out and the mark on the stored one survives.
    await mark(id)
    expect((await post(id, 110, 21 + Math.sin(109 / 7) + (109 % 3) * 0.01)).status).toBe(201)
    const kept = await rowOf(id)
    expect(kept.state.n).toBe(111)
    expect(kept.season.mark).toBe(true)
    // Minute 130 starts another half-hour: its mean goes into the profile, and the season is written.
    expect((await post(id, 130, 21)).status).toBe(201)
    const moved = await rowOf(id)
    expect(moved.season.mark).toBeUndefined()
    expect(moved.season.m).not.toEqual(first.season.m)
  })

  test('a write rolled back after changing states in memory: the next one starts from what was committed', async () => {
    const id = await createSensor(server)
    await feed(id, 60, server)
    // Left in memory: the stored state lags behind this one.
    expect((await post(id, 60, 21)).status).toBe(201)
    const { db, intelligence } = server.ctx
    const key = `${id}:temperatura`
    const attempt = db.transaction(async (tx) => {
      const states = await intelligence.states.take(tx, [id])
      intelligence.states.evict(key, tx)
      states.get(key)!.n += 1000
      await intelligence.states.put(tx, states, Date.now(), { first: 1e12, last: 1e12 })
      throw new Error('rolled back')
    })
    await expect(attempt).rejects.toThrow('rolled back')
    expect((await post(id, 61, 21)).status).toBe(201)
    expect((await rowOf(id)).state.n).toBe(62)
  })

  test('a season another instance wrote is the one taken next', async () => {
    const id = await createSensor(server)
    await feed(id, 60, server)
    // Another writer: another season, and the sensor's progress moved on.
    await pgExecute(
      server.ctx.db.read,
      sql`update detector_state set season = jsonb_set(season::jsonb, '{m,0}', '999')::json where sensor_id = ${id}`,
    )
    await pgExecute(
      server.ctx.db.read,
      sql`update detector_progress set upto = upto + 1 where sensor_id = ${id}`,
    )
    const { db, intelligence } = server.ctx
    const taken = await db.transaction((tx) => intelligence.states.take(tx, [id]))
    expect(taken.get(`${id}:temperatura`)!.profile.m[0]).toBe(999)
    expect((await post(id, 60, 21)).status).toBe(201)
    expect((await rowOf(id)).season.m[0]).toBe(999)
  })
})

describe('PostgreSQL detector states across instances', () => {
  let kept: TestServer
  let other: TestServer
  beforeAll(async () => {
    // This one never writes back on its own: the states it keeps stay in its memory.
    kept = await startTestServer({ DETECTOR_WRITE_BACK_SECONDS: '86400' }, { postgres: true })
    other = await startTestServer({ DATABASE_URL: kept.config.database.url })
  })
  afterAll(async () => {
    await other?.stop()
    await kept?.stop()
  })

  /** Minute `i` of a calm series with a spike every 37 minutes. */
  const reading = (id: number, i: number) => ({
    sensor_id: id,
    temperatura: 21 + Math.sin(i / 7) + (i % 3) * 0.01 + (i % 37 === 36 ? 6 : 0),
    humedad: 50 + Math.cos(i / 9),
    timestamp: new Date(START + i * 60_000).toISOString(),
  })
  /** Sends minutes `from`..`to` (excluded) to `to`: a batch (its minutes shuffled) or single POSTs. */
  async function send(at: TestServer, id: number, minutes: number[], batch: boolean) {
    if (batch) {
      const res = await at.api(
        'POST',
        '/api/v1/readings/batch',
        minutes.map((i) => reading(id, i)),
      )
      expect(res.status).toBe(201)
    } else
      for (const i of minutes)
        expect((await at.api('POST', '/api/v1/readings', reading(id, i))).status).toBe(201)
  }
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i)
  /** Every state of a sensor as stored, by variable. */
  const storedOf = async (id: number) => {
    const rows = await kept.ctx.db.read.select().from(detectorState)
    return new Map(
      rows.filter((r) => r.sensor_id === id).map((r) => [r.variable, JSON.stringify(revive(r))]),
    )
  }

  test('a sensor another instance kept in memory: the next writer checks again what the stored states lag behind, and ends where one writer would', async () => {
    const moved = await createSensor(kept)
    const alone = await createSensor(other)
    // The same readings in the same transactions: one sensor's first go to the instance that keeps its
    // states in memory, the other's all to the other instance. A batch's minutes go out of order, and
    // one reading comes late.
    const plan: [number[], boolean][] = [
      [range(0, 60), true],
      [range(60, 75), false],
      // Late: older than one checked before it, so the detector skips it.
      [[70.5], false],
      [[80, 76, 79, 75, 78, 77], true],
      [range(81, 90), false],
    ]
    for (const [minutes, batch] of plan) await send(kept, moved, minutes, batch)
    for (const [minutes, batch] of plan) await send(other, alone, minutes, batch)
    const [progress] = await pgExecute(
      kept.ctx.db.read,
      sql`select upto, dirty_since from detector_progress where sensor_id = ${moved}`,
    )
    // The stored states lag behind: only the first batch's are written.
    expect(progress!.dirty_since).not.toBeNull()
    expect(JSON.parse([...(await storedOf(moved)).values()][0]!).n).toBe(60)

    const rest: [number[], boolean][] = [
      [[92, 90, 91], true],
      [range(93, 100), false],
    ]
    for (const [minutes, batch] of rest) {
      await send(other, moved, minutes, batch)
      await send(other, alone, minutes, batch)
    }
    await other.ctx.intelligence.states.flush()
    const movedStates = await storedOf(moved)
    const aloneStates = await storedOf(alone)
    expect([...movedStates.keys()].sort()).toEqual(['humedad', 'temperatura'])
    expect(JSON.parse(movedStates.get('temperatura')!).n).toBe(100)
    expect(movedStates).toEqual(aloneStates)
    // The instance that kept them finds the sensor moved on: it does not write its copy over the newer one.
    await kept.ctx.intelligence.states.flush()
    expect(await storedOf(moved)).toEqual(aloneStates)
  })
  test('an instance that stops writes back the states it kept in memory', async () => {
    const lone = await startTestServer({
      DATABASE_URL: kept.config.database.url,
      DETECTOR_WRITE_BACK_SECONDS: '86400',
    })
    const id = await createSensor(lone)
    await send(lone, id, range(0, 40), true)
    await send(lone, id, range(40, 50), false)
    const dirty = sql`select dirty_since from detector_progress where sensor_id = ${id}`
    expect((await pgExecute(kept.ctx.db.read, dirty))[0]!.dirty_since).not.toBeNull()
    await lone.stop()
    expect((await pgExecute(kept.ctx.db.read, dirty))[0]!.dirty_since).toBeNull()
    expect(JSON.parse((await storedOf(id)).get('temperatura')!).n).toBe(50)
  })
})

describe.if(TEST_DATABASE === 'sqlite')('SQLite write-ahead log', () => {
  test('is checkpointed beside the writer: after a burst of writes it is copied back without a checkpoint of its own', async () => {
    const id = await createSensor(server)
    await feed(id, 1000)
    const wal = join(server.dir, 'test.db-wal')
    expect(statSync(wal).size).toBeGreaterThan(0)
    const db = new SQLite(join(server.dir, 'test.db'), { readonly: true })
    try {
      // A read-only connection cannot copy frames itself: its checkpoint fails while any are left, and
      // reports log = checkpointed once the server's own thread has copied them all.
      const copied = () => {
        try {
          const row = db.query('PRAGMA wal_checkpoint(PASSIVE)').get() as Record<string, number>
          return row.log === row.checkpointed
        } catch {
          return false
        }
      }
      let done = copied()
      for (let i = 0; i < 100 && !done; i++) {
        await Bun.sleep(20)
        done = copied()
      }
      expect(done).toBe(true)
    } finally {
      db.close()
    }
  })
})
