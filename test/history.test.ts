// History (CONTRACT §8, docs/storage.md#history): aggregates equal a brute-force computation over the raw
// readings on random data whatever the rollup worker has caught up, bucket edges in UTC (from inclusive,
// to exclusive), rollups exact after corrections and deletes, and the 422s of bad queries.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { asc } from 'drizzle-orm'
import { readings, rollupsHour, rollupsMinute } from '../src/db/schema'
import { catchUp, catchUpOnce } from '../src/modules/history/rollups'
import { expectError, expectInvalid } from './assert'
import { bruteForce, expectRollups, mulberry32, sameRows, type Raw } from './history-kit'
import { createSensor, startTestServer, type TestServer } from './helpers'

setDefaultTimeout(60_000)

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
const DAY = 86_400_000
// A day boundary in UTC, an hour before it and a little after: buckets cross hour and day edges.
const T0 = Date.UTC(2025, 6, 20, 22, 30)

const aggregate = (params: Record<string, string>) =>
  server.api('GET', `/api/v1/readings/aggregate?${new URLSearchParams(params)}`)

/** Every stored reading as the reference sees it. */
async function rawReadings(): Promise<Raw[]> {
  const rows = await server.ctx.db.read.select().from(readings).orderBy(asc(readings.id))
  return rows.map((r) => ({ id: r.id, sensor_id: r.sensor_id, t: r.timestamp, values: r.values }))
}

describe('aggregates equal a brute-force computation over raw readings', () => {
  let ids: number[] = []
  beforeAll(async () => {
    ids = [await createSensor(server), await createSensor(server), await createSensor(server)]
    const rand = mulberry32(14)
    const body = []
    for (let i = 0; i < 1500; i++) {
      // Whole seconds and odd milliseconds, some readings at the same instant, some without co2.
      const t =
        T0 + Math.floor(rand() * 3 * 3_600_000) - (rand() < 0.2 ? 0 : Math.floor(rand() * 1000))
      const values: Record<string, number> = { temperatura: Math.round(rand() * 4000) / 100 - 10 }
      if (rand() < 0.7) values.co2 = 400 + Math.round(rand() * 300)
      body.push({ sensor_id: ids[Math.floor(rand() * 3)]!, values, timestamp: iso(t) })
      if (rand() < 0.05)
        body.push({ ...body[body.length - 1]!, values: { temperatura: rand() * 10 } })
    }
    for (let i = 0; i < body.length; i += 500)
      expect(
        (await server.api('POST', '/api/v1/readings/batch', body.slice(i, i + 500))).status,
      ).toBe(201)
  })

  test('random ranges, buckets and functions, with the rollups behind, part way and caught up', async () => {
    const rand = mulberry32(7)
    const buckets = ['1s', '7s', '1m', '5m', '7m', '1h', '2h', '1d', '30d']
    const fns = 'avg,min,max,count,sum,first,last'
    const check = async (round: number) => {
      const raw = await rawReadings()
      for (let q = 0; q < 12; q++) {
        const bucket = buckets[(q + round) % buckets.length]!
        const from = T0 - 600_000 + Math.floor(rand() * 3_600_000)
        const span = bucket === '1s' ? 600_000 : 1_000 + Math.floor(rand() * 4 * 3_600_000)
        const sensors = ids.filter(() => rand() < 0.7)
        const chosen = sensors.length ? sensors : [ids[0]!]
        const variable = rand() < 0.5 ? 'temperatura' : 'co2'
        const res = await aggregate({
          sensor_id: chosen.join(','),
          variable,
          from: iso(from),
          to: iso(from + span),
          bucket,
          fn: fns,
        })
        expect(res.status).toBe(200)
        sameRows(
          res.body,
          bruteForce(raw, chosen, variable, from, from + span, bucket, fns.split(',')),
        )
      }
    }
    await check(0)
    await catchUpOnce(server.ctx.db, 400)
    await check(1)
    await catchUp(server.ctx.db)
    await check(2)
    // Whole days: from and to on hour boundaries, answered from hour rollups only.
    const res = await aggregate({
      sensor_id: ids.join(','),
      variable: 'temperatura',
      from: iso(T0 - 30 * 60_000),
      to: iso(T0 + 4 * 3_600_000 - 30 * 60_000),
      bucket: '1h',
      fn: fns,
    })
    sameRows(
      res.body,
      bruteForce(
        await rawReadings(),
        ids,
        'temperatura',
        T0 - 1_800_000,
        T0 + 12_600_000,
        '1h',
        fns.split(','),
      ),
    )
    expect(res.body.length).toBeGreaterThan(6)
  })
})

describe('bucket edges', () => {
  test('buckets start at UTC epoch multiples; from is inclusive, to exclusive', async () => {
    const id = await createSensor(server)
    const midnight = Date.UTC(2025, 7, 1)
    const at = [midnight - 1, midnight, midnight + 299_999, midnight + 300_000, midnight + DAY - 1]
    const body = at.map((t, i) => ({ sensor_id: id, values: { v: i + 1 }, timestamp: iso(t) }))
    expect((await server.api('POST', '/api/v1/readings/batch', body)).status).toBe(201)
    const day = await aggregate({
      sensor_id: String(id),
      variable: 'v',
      from: iso(midnight - DAY),
      to: iso(midnight + DAY),
      bucket: '1d',
      fn: 'count,first,last',
    })
    expect(day.body).toEqual([
      { sensor_id: id, variable: 'v', bucket: iso(midnight - DAY), count: 1, first: 1, last: 1 },
      { sensor_id: id, variable: 'v', bucket: iso(midnight), count: 4, first: 2, last: 5 },
    ])
    // from exactly on a reading includes it; to exactly on a reading leaves it out.
    const five = await aggregate({
      sensor_id: String(id),
      variable: 'v',
      from: iso(midnight),
      to: iso(midnight + 300_000),
      bucket: '5m',
      fn: 'count,sum',
    })
    expect(five.body).toEqual([
      { sensor_id: id, variable: 'v', bucket: iso(midnight), count: 2, sum: 5 },
    ])
    // A zone offset in from/to is the same instant; buckets stay on UTC multiples.
    const offset = await aggregate({
      sensor_id: String(id),
      variable: 'v',
      from: '2025-08-01T02:00:00+02:00',
      to: '2025-08-01T02:10:00+02:00',
      bucket: '5m',
      fn: 'count',
    })
    expect(offset.body.map((r: { bucket: string }) => r.bucket)).toEqual([
      iso(midnight),
      iso(midnight + 300_000),
    ])
  })
})

describe('rollups after corrections and deletes', () => {
  test('PUT, PATCH and DELETE keep every minute and hour rollup equal to its raw readings', async () => {
    const id = await createSensor(server)
    const other = await createSensor(server)
    const base = Date.UTC(2025, 8, 1, 12)
    const body = Array.from({ length: 40 }, (_, i) => ({
      sensor_id: id,
      values: { temperatura: 20 + (i % 7), humedad: 50 + i },
      timestamp: iso(base + i * 20_000),
    }))
    const created = (await server.api('POST', '/api/v1/readings/batch', body)).body as {
      id: number
    }[]
    await catchUp(server.ctx.db)
    const [a, b, c, d] = [created[0]!.id, created[5]!.id, created[10]!.id, created[39]!.id]
    // The minimum of its minute raised, moved to another hour and another sensor.
    expect(
      (
        await server.api('PUT', `/api/v1/readings/${a}`, {
          sensor_id: other,
          temperatura: 99,
          timestamp: iso(base + 2 * 3_600_000 + 5_000),
        })
      ).status,
    ).toBe(200)
    expect(
      (await server.api('PATCH', `/api/v1/readings/${b}`, { humedad: null, temperatura: -5 }))
        .status,
    ).toBe(200)
    expect((await server.api('DELETE', `/api/v1/readings/${c}`)).status).toBe(204)
    expect((await server.api('DELETE', `/api/v1/readings/${d}`)).status).toBe(204)
    await catchUp(server.ctx.db)
    const raw = await rawReadings()
    for (const [table, size] of [
      [rollupsMinute, 60_000],
      [rollupsHour, 3_600_000],
    ] as const) {
      const stored = (await server.ctx.db.read.select().from(table)).filter(
        (r) => r.sensor_id === id || r.sensor_id === other,
      )
      expectRollups(stored, raw, [id, other], ['temperatura', 'humedad'], size)
    }
  })
})

describe('bad queries', () => {
  test('a clear 422 naming the field, and too_many_rows saying how to narrow it', async () => {
    const id = await createSensor(server)
    const ok = {
      sensor_id: String(id),
      variable: 'temperatura',
      from: iso(T0),
      to: iso(T0 + DAY),
      bucket: '1h',
    }
    expect((await aggregate(ok)).status).toBe(200)
    expectInvalid(await aggregate({ ...ok, bucket: '0s' }), 'bucket')
    expectInvalid(await aggregate({ ...ok, bucket: '31d' }), 'bucket')
    expectInvalid(await aggregate({ ...ok, bucket: '5w' }), 'bucket')
    expectInvalid(await aggregate({ ...ok, to: iso(T0) }), 'to')
    expectInvalid(await aggregate({ ...ok, from: '2025-02-30T00:00:00Z' }), 'from')
    expectInvalid(await aggregate({ ...ok, fn: 'avg,median' }), 'fn')
    expectInvalid(await aggregate({ ...ok, variable: 'Temp' }), 'variable')
    expectInvalid(await aggregate({ ...ok, sensor_id: '1,x' }), 'sensor_id')
    const { variable: _, ...noVariable } = ok
    expectInvalid(await aggregate(noVariable), 'variable')
    expectInvalid(await aggregate({ ...ok, sensor_id: '999999' }), 'sensor_id', 'unknown_reference')
    const many = await aggregate({ ...ok, to: iso(T0 + 30 * DAY), bucket: '1s' })
    expectError(many, 422, 'too_many_rows')
    expect(many.body.message).toContain('AGGREGATE_MAX_ROWS')
    expect(many.body.message).toMatch(/narrow from\/to|larger bucket/)
  })
})
