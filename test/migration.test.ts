// The measurements migration on real data: a database built with the migrations and the row layout of
// the first wave (readings with temperatura/humedad columns), then the new server started on it.
// Runs on SQLite, and on PostgreSQL through its own migrations when matrix.test.ts runs it again there.
import { Database as SQLite } from 'bun:sqlite'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { asc } from 'drizzle-orm'
import { drizzle as sqliteDrizzle } from 'drizzle-orm/bun-sqlite'
import { migrate as sqliteMigrate } from 'drizzle-orm/bun-sqlite/migrator'
import { drizzle as pgDrizzle } from 'drizzle-orm/postgres-js'
import { migrate as pgMigrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import { latestValues } from '../src/db/schema'
import {
  createTestDatabase,
  startTestServer,
  tempDir,
  TEST_DATABASE,
  type TestServer,
} from './helpers'

setDefaultTimeout(30_000)

const ROOT = join(import.meta.dir, '..')
/** The first migration of this issue; everything before it is the layout being migrated from. */
const FIRST_NEW = 'measurements'

/** A migrations folder holding only the migrations that came before `FIRST_NEW`. */
function oldMigrations(dialect: 'sqlite' | 'postgres') {
  const from = join(ROOT, 'drizzle', dialect)
  const journal = JSON.parse(readFileSync(join(from, 'meta/_journal.json'), 'utf8'))
  const index = journal.entries.findIndex((e: { tag: string }) => e.tag.endsWith(FIRST_NEW))
  expect(index).toBeGreaterThan(0)
  journal.entries = journal.entries.slice(0, index)
  const to = join(tempDir('vigia-old-migrations-'), dialect)
  mkdirSync(join(to, 'meta'), { recursive: true })
  writeFileSync(join(to, 'meta/_journal.json'), JSON.stringify(journal))
  for (const { tag } of journal.entries)
    copyFileSync(join(from, `${tag}.sql`), join(to, `${tag}.sql`))
  return to
}

type Exec = (text: string, params?: unknown[]) => Promise<Record<string, any>[]>

/** An empty database of the old layout, its SQL runner, and how to start the new server on it. */
async function oldDatabase() {
  if (TEST_DATABASE === 'sqlite') {
    const dir = tempDir()
    const conn = new SQLite(join(dir, 'test.db'), { create: true, strict: true })
    sqliteMigrate(sqliteDrizzle({ client: conn }), { migrationsFolder: oldMigrations('sqlite') })
    const exec: Exec = async (text, params = []) =>
      conn.query(text.replace(/\$(\d+)/g, '?$1')).all(...(params as never[])) as Record<
        string,
        any
      >[]
    return {
      exec,
      start: async () => {
        conn.close()
        return startTestServer({}, { dir })
      },
      drop: async () => undefined,
    }
  }
  const db = await createTestDatabase()
  const client = postgres(db.url, { max: 1, onnotice: () => {} })
  await pgMigrate(pgDrizzle({ client }), { migrationsFolder: oldMigrations('postgres') })
  const exec: Exec = async (text, params = []) => [
    ...(await client.unsafe(text, params as never[])),
  ]
  return {
    exec,
    start: async () => {
      await client.end()
      return startTestServer({ DATABASE_URL: db.url })
    },
    drop: () => db.drop(),
  }
}

interface OldReading {
  id: number
  sensor_id: number
  temperatura: number | null
  humedad: number | null
  timestamp: number
}

const T0 = Date.UTC(2025, 6, 20, 10, 0, 0)
const MIN = 60_000

describe('the measurements migration, on a database of the previous layout with data', () => {
  let server: TestServer
  let old: Awaited<ReturnType<typeof oldDatabase>>
  const sensors: number[] = []
  const stored: OldReading[] = []
  let anomalyId: number

  beforeAll(async () => {
    old = await oldDatabase()
    for (const tipo of ['temperatura', 'humedad', 'temperatura_humedad', 'sin_lecturas']) {
      const [row] = await old.exec(
        `insert into sensors (tipo, modelo, created_at, updated_at) values ($1, 'DHT22', $2, $2) returning id`,
        [tipo, T0],
      )
      sensors.push(Number(row!.id))
    }
    const [s1, s2, s3] = sensors as [number, number, number]
    // Doubles that a text round trip with too few digits would change, both bounds, both columns, one
    // column, two readings of one sensor at the same instant (the later id is the newer), and out of order.
    const rows: [number, number | null, number | null, number][] = [
      [s1, 20.5, null, T0],
      [s1, 0.1 + 0.2, null, T0 + MIN],
      [s1, -273.15, null, T0 + 3 * MIN],
      [s1, 23.456789012345678, null, T0 + 2 * MIN],
      [s2, null, 65.2, T0],
      [s2, null, 100, T0 + MIN],
      [s2, null, 0, T0 + 2 * MIN],
      [s3, 1000, 1e-7, T0],
      [s3, 21.25, null, T0 + MIN],
      [s3, null, 33.3, T0 + 2 * MIN],
      [s3, 19, 44.4, T0 + 2 * MIN],
    ]
    for (const [sensor_id, temperatura, humedad, timestamp] of rows) {
      const [row] = await old.exec(
        `insert into readings (sensor_id, temperatura, humedad, timestamp, created_at) values ($1, $2, $3, $4, $4) returning id`,
        [sensor_id, temperatura, humedad, timestamp],
      )
      stored.push({ id: Number(row!.id), sensor_id, temperatura, humedad, timestamp })
    }
    const [anomaly] = await old.exec(
      `insert into anomalies (sensor_id, reading_id, variable, value, severity, status, rule, first_seen, last_seen, created_at, updated_at)
       values ($1, $2, 'temperatura', 1000, 'critical', 'open', 'threshold', $3, $3, $3, $3) returning id`,
      [s3, stored[7]!.id, T0],
    )
    anomalyId = Number(anomaly!.id)
    server = await old.start()
  })
  afterAll(async () => {
    await server?.stop()
    await old?.drop()
  })

  test('every reading comes back with the same temperatura and humedad, and both in values', async () => {
    const res = await server.api('GET', '/api/v1/readings?order=asc&limit=1000')
    expect(res.status).toBe(200)
    expect(res.body).toHaveLength(stored.length)
    const byId = new Map(res.body.map((r: { id: number }) => [r.id, r]))
    for (const row of stored) {
      const values: Record<string, number> = {}
      if (row.temperatura !== null) values.temperatura = row.temperatura
      if (row.humedad !== null) values.humedad = row.humedad
      // toBe on each number: the exact same double, not a close one.
      const reading = byId.get(row.id) as Record<string, any>
      expect(reading).toEqual({
        id: row.id,
        sensor_id: row.sensor_id,
        temperatura: row.temperatura,
        humedad: row.humedad,
        values,
        timestamp: new Date(row.timestamp).toISOString().replace('.000Z', 'Z'),
        created_at: expect.any(String),
      })
      for (const [name, value] of Object.entries(values)) expect(reading.values[name]).toBe(value)
    }
  })

  test('the last-value store starts with the newest value of each sensor variable', async () => {
    const expected = new Map<string, OldReading & { value: number }>()
    for (const row of stored)
      for (const variable of ['temperatura', 'humedad'] as const) {
        const value = row[variable]
        if (value === null) continue
        const key = `${row.sensor_id}:${variable}`
        const current = expected.get(key)
        if (
          !current ||
          row.timestamp > current.timestamp ||
          (row.timestamp === current.timestamp && row.id > current.id)
        )
          expected.set(key, { ...row, value })
      }
    // One row per sensor: each variable's newest as [value, ms, reading id], and GET /latest's entries.
    const rows = await server.ctx.db.read
      .select()
      .from(latestValues)
      .orderBy(asc(latestValues.sensor_id))
    const bySensor = new Map<
      number,
      { newest: Record<string, unknown>; entries: Record<string, unknown> }
    >()
    for (const [key, row] of [...expected].sort(([a], [b]) => (a < b ? -1 : 1))) {
      const variable = key.split(':')[1]!
      let sensor = bySensor.get(row.sensor_id)
      if (!sensor) bySensor.set(row.sensor_id, (sensor = { newest: {}, entries: {} }))
      sensor.newest[variable] = [row.value, row.timestamp, row.id]
      sensor.entries[variable] = {
        value: row.value,
        timestamp: new Date(row.timestamp).toISOString(),
      }
    }
    expect(
      rows.map((r) => ({
        sensor_id: r.sensor_id,
        newest: JSON.parse(r.newest),
        entries: JSON.parse(`{${r.entries}}`),
      })),
    ).toEqual(
      [...bySensor]
        .sort(([a], [b]) => a - b)
        .map(([sensor_id, { newest, entries }]) => ({ sensor_id, newest, entries })),
    )
    // Two readings of sensor 3 at the same instant: the later one (higher id) is the newest.
    const third = rows.find((r) => r.sensor_id === sensors[2])!
    expect(JSON.parse(third.newest).humedad).toEqual([44.4, expect.any(Number), stored[10]!.id])
    // toEqual compares numbers exactly (the same double); the entries are in name order.
    for (const r of rows)
      expect(Object.keys(JSON.parse(`{${r.entries}}`))).toEqual(
        Object.keys(JSON.parse(r.newest)).sort(),
      )
  })

  test('sensors with readings start online, last seen when their newest reading was stored; the others unknown', async () => {
    for (const [i, id] of sensors.entries()) {
      const mine = stored.filter((r) => r.sensor_id === id)
      const sensor = (await server.api('GET', `/api/v1/sensors/${id}`)).body
      if (i === 3) expect(sensor).toMatchObject({ status: 'unknown', last_seen: null })
      else
        expect(sensor).toMatchObject({
          status: 'online',
          last_seen: new Date(Math.max(...mine.map((r) => r.timestamp)))
            .toISOString()
            .replace('.000Z', 'Z'),
          offline_after: null,
        })
    }
  })

  test('the original two variables are registered with their units', async () => {
    const res = await server.api('GET', '/api/v1/variables')
    expect(res.body).toMatchObject([
      { name: 'humedad', unit: '%' },
      { name: 'temperatura', unit: '°C' },
    ])
  })

  test('anomalies keep pointing at their readings, and new readings with any variable are stored beside the old ones', async () => {
    const anomaly = await server.api('GET', `/api/v1/anomalies/${anomalyId}`)
    expect(anomaly.body).toMatchObject({ reading_id: stored[7]!.id, variable: 'temperatura' })
    const res = await server.api('POST', '/api/v1/readings', {
      sensor_id: sensors[0],
      temperatura: 22,
      values: { co2: 415 },
      timestamp: new Date(T0 + 10 * MIN).toISOString(),
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      temperatura: 22,
      humedad: null,
      values: { temperatura: 22, co2: 415 },
    })
    const readings = await server.api('GET', `/api/v1/readings?sensor_id=${sensors[0]}&limit=1000`)
    expect(readings.body).toHaveLength(5)
    expect(readings.headers.get('x-total-count')).toBe('5')
  })
})
