// READINGS_RETENTION (CONTRACT §8, docs/storage.md#history): raw readings older than the cut are deleted
// while writers keep posting, nothing newer than the cut is lost, the rollups stay and answer aggregates
// over the pruned range exactly as the raw readings did, and a correction into that range is refused.
import { afterAll, beforeAll, expect, setDefaultTimeout, test } from 'bun:test'
import { asc, count, lt } from 'drizzle-orm'
import { readings } from '../src/db/schema'
import { retentionCut } from '../src/modules/history/retention'
import { expectError } from './assert'
import { bruteForce, mulberry32, sameRows, type Raw } from './history-kit'
import { createSensor, startTestServer, until, type TestServer } from './helpers'

setDefaultTimeout(90_000)

const HOUR = 3_600_000
let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ READINGS_RETENTION: '2h', READINGS_RETENTION_INTERVAL: '1' })
})
afterAll(() => server.stop())

const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')

test('retention prunes old readings under concurrent writers; rollups answer the pruned range', async () => {
  const sensors = [await createSensor(server), await createSensor(server)]
  const now = Date.now()
  const rand = mulberry32(3)
  // Writers post fresh readings (single and batch) from the start, while old ones arrive and retention runs; every acknowledged one stays.
  const acknowledged: number[] = []
  let writing = true
  const writer = async (k: number) => {
    for (let i = 0; writing; i++) {
      const res = await server.api('POST', '/api/v1/readings', {
        sensor_id: sensors[k % 2]!,
        // Inside temperatura's physical range (up to 1,000) however many readings a writer gets in.
        temperatura: i % 1000,
        timestamp: iso(Date.now() - (i % 10) * 60_000),
      })
      expect(res.status, `a writer's POST answered ${JSON.stringify(res.body)}`).toBe(201)
      acknowledged.push(res.body.id)
    }
  }
  const writers = [writer(0), writer(1), writer(2)]
  // Old readings: 6 to 3 hours ago, well before the cut (2 h ago, aligned down to the hour).
  const old = Array.from({ length: 6000 }, (_, i) => ({
    sensor_id: sensors[i % 2]!,
    values: { temperatura: Math.round(rand() * 3000) / 100, humedad: 40 + (i % 50) },
    timestamp: iso(now - 6 * HOUR + Math.floor(rand() * 3 * HOUR)),
  }))
  const stored: Raw[] = []
  for (let i = 0; i < old.length; i += 1000) {
    const res = await server.api('POST', '/api/v1/readings/batch', old.slice(i, i + 1000))
    expect(res.status).toBe(201)
    for (const r of res.body)
      stored.push({
        id: r.id,
        sensor_id: r.sensor_id,
        t: Date.parse(r.timestamp),
        values: r.values,
      })
  }
  const from = Math.floor((now - 6 * HOUR) / HOUR) * HOUR
  const to = retentionCut(now, 2 * HOUR)
  const query = (bucket: string, fn = 'avg,min,max,count,sum,first,last') =>
    server.api(
      'GET',
      `/api/v1/readings/aggregate?${new URLSearchParams({ sensor_id: sensors.join(','), variable: 'temperatura', from: iso(from), to: iso(to), bucket, fn })}`,
    )
  const before = { hour: (await query('1h')).body, minute: (await query('10m')).body }
  sameRows(
    before.hour,
    bruteForce(
      stored,
      sensors,
      'temperatura',
      from,
      to,
      '1h',
      'avg,min,max,count,sum,first,last'.split(','),
    ),
  )

  const oldLeft = async () => {
    const [row] = await server.ctx.db.read
      .select({ n: count() })
      .from(readings)
      .where(lt(readings.timestamp, to))
    return row!.n
  }
  await until(async () => (await oldLeft()) === 0, 'the old readings to be pruned', 60_000)
  writing = false
  await Promise.all(writers)
  expect(acknowledged.length).toBeGreaterThan(10)
  const kept = new Set(
    (
      await server.ctx.db.read.select({ id: readings.id }).from(readings).orderBy(asc(readings.id))
    ).map((r) => r.id),
  )
  expect(acknowledged.filter((id) => !kept.has(id))).toEqual([])

  // The pruned range is answered from the rollups, the same as before pruning.
  sameRows((await query('1h')).body, before.hour)
  sameRows((await query('10m')).body, before.minute)

  // Moving a kept reading into the pruned range would lose rollup data: refused, nothing changed.
  const id = acknowledged[0]!
  const moved = await server.api('PATCH', `/api/v1/readings/${id}`, { timestamp: iso(from + HOUR) })
  expectError(moved, 409, 'conflict')
  expect(moved.body.message).toContain('READINGS_RETENTION')
  expect((await server.api('GET', `/api/v1/readings/${id}`)).body.timestamp).not.toBe(
    iso(from + HOUR),
  )
})
