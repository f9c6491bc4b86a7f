// The PostgreSQL side of the storage: its schema mirrors schema.ts, its migrations match it, and the
// queries built from schema.ts read and write the same values there as on SQLite.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { is, sql } from 'drizzle-orm'
import { getTableConfig as pgConfig, PgTable } from 'drizzle-orm/pg-core'
import { getTableConfig as sqliteConfig, SQLiteTable } from 'drizzle-orm/sqlite-core'
import { pgExecute } from '../src/db/postgres'
import { bulkInsert } from '../src/db/bulk'
import { catchUpOnce } from '../src/modules/history/rollups'
import * as pgSchema from '../src/db/pg-schema'
import * as schema from '../src/db/schema'
import { openTestStorage } from './helpers'
import { expectRollups, mulberry32, type Raw } from './history-kit'

setDefaultTimeout(30_000)

/** The PostgreSQL column types that hand back what each SQLite column type expects. */
const COMPATIBLE: Record<string, string[]> = {
  SQLiteInteger: ['PgBigInt53', 'PgInteger', 'PgSmallInt'],
  SQLiteTimestamp: ['PgBigInt53'],
  SQLiteBoolean: ['PgBoolean'],
  SQLiteReal: ['PgDoublePrecision'],
  SQLiteText: ['PgText', 'PgVarchar'],
  // Text too: the driver hands json back as its text, so JSON that only the server reads may be stored as text.
  SQLiteTextJson: ['PgJsonb', 'PgJson', 'PgText'],
}

const run = (cmd: string[]) => {
  const proc = Bun.spawnSync(cmd, { cwd: `${import.meta.dir}/..`, stdout: 'pipe', stderr: 'pipe' })
  return { code: proc.exitCode, out: `${proc.stdout.toString()}${proc.stderr.toString()}` }
}

describe('the PostgreSQL schema', () => {
  test('mirrors every table, column, index and foreign key of schema.ts with compatible types', () => {
    const sqliteTables = Object.values(schema).filter((t) => is(t, SQLiteTable))
    const pgTables = new Map(
      Object.values(pgSchema)
        .filter((t) => is(t, PgTable))
        .map((t) => [pgConfig(t as PgTable).name, pgConfig(t as PgTable)]),
    )
    expect(sqliteTables.length).toBeGreaterThan(0)
    expect([...pgTables.keys()].sort()).toEqual(
      sqliteTables.map((t) => sqliteConfig(t as SQLiteTable).name).sort(),
    )
    for (const table of sqliteTables) {
      const lite = sqliteConfig(table as SQLiteTable)
      const pg = pgTables.get(lite.name)!
      const describeColumns = (
        columns: { name: string; notNull: boolean; primary: boolean; hasDefault: boolean }[],
      ) =>
        columns
          .map(
            (c) =>
              // A SQLite integer primary key always has a default (the rowid); PostgreSQL's may not.
              `${lite.name}.${c.name} notNull=${c.notNull} primary=${c.primary} default=${c.primary || c.hasDefault}`,
          )
          .sort()
      expect(describeColumns(pg.columns)).toEqual(describeColumns(lite.columns))
      for (const column of lite.columns) {
        const mirror = pg.columns.find((c) => c.name === column.name)!
        const allowed = COMPATIBLE[column.columnType] ?? []
        if (!allowed.includes(mirror.columnType))
          throw new Error(
            `${lite.name}.${column.name}: ${column.columnType} in schema.ts needs one of ${allowed.join(', ') || '(add it to COMPATIBLE)'} in pg-schema.ts, not ${mirror.columnType}`,
          )
      }
      expect(pg.indexes.map((i) => i.config.name).sort()).toEqual(
        lite.indexes.map((i) => i.config.name).sort(),
      )
      expect(pg.foreignKeys.map((f) => f.getName()).sort()).toEqual(
        lite.foreignKeys.map((f) => f.getName()).sort(),
      )
    }
  })

  test('has committed migrations in drizzle/postgres that match pg-schema.ts', () => {
    const config = ['--config', 'drizzle.pg.config.ts']
    const check = run(['bun', 'x', 'drizzle-kit', 'check', ...config])
    expect(check.code).toBe(0)
    const generate = run(['bun', 'x', 'drizzle-kit', 'generate', ...config, '--name', 'ci_probe'])
    expect(generate.out).toContain('No schema changes')
  }, 60_000)

  test('stores JSON as json text as written, ms timestamps as bigint, and reads both back as SQLite does', async () => {
    const { db, close } = await openTestStorage('postgres')
    try {
      const now = Date.now()
      const forecast = [{ timestamp: '2025-07-20T10:30:00Z', value: 23.5 }]
      const [sensor] = await db.transaction((tx) =>
        tx
          .insert(schema.sensors)
          .values({ tipo: 't', modelo: 'm', created_at: now, updated_at: now })
          .returning(),
      )
      await db.transaction((tx) =>
        tx.insert(schema.predictions).values({
          sensor_id: sensor!.id,
          variable: 'temperatura',
          horizon_minutes: 30,
          forecast,
          metrics: { mae: 0.25, points: 12 },
          created_at: now,
          updated_at: now,
        }),
      )
      const [row] = await db.read.select().from(schema.predictions)
      expect(row!.forecast).toEqual(forecast)
      expect(row!.metrics).toEqual({ mae: 0.25, points: 12 })
      expect(row!.created_at).toBe(now)
      expect(row!.sensor_id).toBe(sensor!.id)
      const [kinds] = await db.read
        .select({
          forecast: sql<string>`json_typeof(${schema.predictions.forecast})`,
          created: sql<string>`pg_typeof(${schema.predictions.created_at})::text`,
        })
        .from(schema.predictions)
      expect(kinds).toEqual({ forecast: 'array', created: 'bigint' })
    } finally {
      await close()
    }
  })

  test('keeps a detector state of a few KB inline and uncompressed, with room on its page for the next version', async () => {
    const { db, close } = await openTestStorage('postgres')
    try {
      const now = Date.now()
      const [sensor] = await db.transaction((tx) =>
        tx
          .insert(schema.sensors)
          .values({ tipo: 't', modelo: 'm', created_at: now, updated_at: now })
          .returning(),
      )
      // About the size of a state that has learned a few days (2.3 KB), past the 2 KB compression line.
      const state = { m: Array.from({ length: 150 }, (_, i) => 1000 + i / 7) }
      await db.transaction((tx) =>
        tx.insert(schema.detectorState).values({
          sensor_id: sensor!.id,
          variable: 'temperatura',
          rev: 'r',
          state,
          updated_at: now,
        }),
      )
      const [row] = await pgExecute(
        db.read,
        sql`select length(state::text) as text, pg_column_size(state) as stored,
          (select reloptions::text from pg_class where relname = 'detector_state') as options
          from detector_state`,
      )
      expect(Number(row!.text)).toBeGreaterThan(2_100)
      // Stored as written (a compressed value is smaller than its text).
      expect(Number(row!.stored)).toBeGreaterThanOrEqual(Number(row!.text))
      expect(row!.options).toContain('toast_tuple_target=8160')
      expect(row!.options).toContain('fillfactor=50')
    } finally {
      await close()
    }
  })

  test('bulk inserts store every row as given, in order, as column lists and as one JSON array alike', async () => {
    const { db, close } = await openTestStorage('postgres')
    try {
      const now = Date.now()
      // 150 rows go as column lists, 3 as the JSON array; the last batch holds a separator, so it
      // goes as the JSON array although it is large.
      const batch = (n: number, prefix: string, odd = '') =>
        Array.from({ length: n }, (_, i) => ({
          tipo: i === 1 ? '' : `${prefix}${i}${i === 2 ? odd : ''}`,
          modelo: `m"\\'${i}`,
          nombre: i % 3 === 0 ? null : `nombre ${i} ñ ✓`,
          location_id: null,
          thresholds: i % 2 === 0 ? { temperatura: { max: 30 + i / 7, min: null } } : null,
          status: 'unknown' as const,
          last_seen: i % 4 === 0 ? null : now + i,
          offline_after: i % 5 === 0 ? 0 : null,
          created_at: now,
          updated_at: now,
        }))
      const batches = [batch(150, 'list '), batch(3, 'json '), batch(120, 'sep ', '\x1e')]
      for (const rows of batches) {
        const ids = await db.transaction((tx) =>
          bulkInsert(tx, schema.sensors, rows, 'returning id'),
        )
        expect(ids).toHaveLength(rows.length)
        const stored = await db.read
          .select()
          .from(schema.sensors)
          .where(
            sql`${schema.sensors.id} >= ${Number(ids[0]!.id)} and ${schema.sensors.id} <= ${Number(ids.at(-1)!.id)}`,
          )
          .orderBy(schema.sensors.id)
        expect(stored.map((r) => r.id)).toEqual(ids.map((r) => Number(r.id)))
        expect(stored.map(({ id: _, ...rest }) => rest)).toEqual(rows)
      }
    } finally {
      await close()
    }
  })

  test('folds readings into minute and hour rollups equal to a brute-force computation, pass after pass', async () => {
    const { db, close } = await openTestStorage('postgres')
    try {
      const made = await pgExecute(
        db.read,
        sql`insert into sensors (tipo, modelo, created_at, updated_at)
            values ('temperatura', 'm', 0, 0), ('temperatura', 'm', 0, 0) returning id`,
      )
      const sensors = made.map((r) => Number(r.id))
      // Stored out of time order, a fifth at the instant of the one before (first and last then go
      // by reading id), across hour and day edges, some without co2.
      const rand = mulberry32(16)
      const t0 = Date.UTC(2025, 6, 20, 22, 30)
      let t = t0
      const rows = Array.from({ length: 600 }, () => {
        if (rand() >= 0.2) t = t0 + Math.floor(rand() * 3 * 3_600_000)
        const values: Record<string, number> = { temperatura: Math.round(rand() * 4000) / 100 - 10 }
        if (rand() < 0.7) values.co2 = 400 + Math.round(rand() * 300)
        return { sensor_id: sensors[Math.floor(rand() * 2)]!, values, timestamp: t, created_at: t }
      })
      await db.transaction((tx) => bulkInsert(tx, schema.readings, rows, 'returning id'))
      // Passes of 150 readings, so later passes merge into buckets already stored.
      let passes = 0
      while ((await catchUpOnce(db, 150)) > 0) passes += 1
      expect(passes).toBe(4)
      const raw: Raw[] = (await db.read.select().from(schema.readings)).map((r) => ({
        id: r.id,
        sensor_id: r.sensor_id,
        t: r.timestamp,
        values: r.values,
      }))
      for (const [table, size] of [
        [schema.rollupsMinute, 60_000],
        [schema.rollupsHour, 3_600_000],
      ] as const)
        expectRollups(
          await db.read.select().from(table),
          raw,
          sensors,
          ['temperatura', 'co2'],
          size,
        )
    } finally {
      await close()
    }
  })
})
