// The bench's ingest references write what Vigía writes: for the same fleet readings, plain bun:sqlite and
// plain postgres.js store the same reading rows (and per-variable rows, when the layout has them) and the
// same event rows as the real server does, in the layout the build's migrations create. It checks the
// yardstick is the same work, never how fast anything is.
import { Database } from 'bun:sqlite'
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { drizzle } from 'drizzle-orm/bun-sqlite'
import postgres from 'postgres'
import { LOAD, PLANS, type Ctx } from '../bench/lib/context'
import { Lane, fleetBody, VARIABLES, type VariableCount } from '../bench/lib/fleet'
import {
  migratePostgres,
  migrateSqlite,
  postgresLayout,
  readingPlan,
  sqliteLayout,
  type Layout,
} from '../bench/lib/layout'
import { freshDatabase } from '../bench/lib/pg'
import type { Results } from '../bench/lib/results'
import { call, startServer } from '../bench/lib/servers'
import { PgWriter, SqliteWriter } from '../bench/lib/writers'
import { detectFleet, template } from '../bench/phases/fleet-setup'
import { parseDatabaseUrl } from '../src/config'
import { openDatabase, schema, type Tx } from '../src/db'
import { readAfter } from '../src/realtime/event-log'
import { tempDir } from './helpers'

setDefaultTimeout(30_000)

const dir = tempDir('vigia-bench-ref-')
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const SENSORS = 3

/** What the bench found out about the build (variables it stores, its reading frame). */
async function detected() {
  const results = { meta: {}, skipped: [], failures: [] } as unknown as Results
  const ctx = {
    plan: { ...PLANS.tiny, sensors: SENSORS },
    results,
    log: () => {},
  } as unknown as Ctx
  await detectFleet(ctx)
  return { fleet: results.meta.fleet!, template: template(ctx) }
}

const readings = (vars: VariableCount, start: number) =>
  new Lane([1, 2, 3], LOAD.seed, start, vars).take(12)

/** Rows compared: everything but the moment they were written. */
const strip = (row: Record<string, unknown>) =>
  Object.fromEntries(
    Object.entries(row)
      .filter(([k]) => !/^(created_at|updated_at)$/.test(k))
      .map(([k, v]) => [k, typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v]),
  )

/** A reading event's frame without its seq and write times. */
function frame(payload: string) {
  const { seq, timestamp, data, ...rest } = JSON.parse(payload)
  void seq
  void timestamp
  const { created_at, ...kept } = data
  void created_at
  return { ...rest, data: kept }
}

/** The reading events of Vigía's log as its reader hands them out, as [channels, frame]. */
const vigiaFrames = async (db: Tx) =>
  (await readAfter(db, 0, 1e9))
    .filter((e) => e.payload.includes('"entity_type":"reading"'))
    .map((e) => [e.channels, frame(e.payload)])

function readingTables(layout: Layout) {
  const plan = readingPlan(layout)
  return [plan.readings, ...plan.children].map((p) => p.table)
}

async function throughVigia(
  url: { sqliteFile?: string; postgresUrl?: string },
  vars: VariableCount,
  start: number,
) {
  const server = await startServer('vigia', 2000, url)
  try {
    for (let i = 0; i < SENSORS; i++)
      expect(
        (
          await call(server.base, 'POST', '/api/v1/sensors', {
            tipo: 'temperatura',
            modelo: 'DHT22',
          })
        ).status,
      ).toBe(201)
    const r = await call(
      server.base,
      'POST',
      '/api/v1/readings/batch',
      readings(vars, start).map((x) => fleetBody(x, vars)),
    )
    expect(r.status).toBe(201)
  } finally {
    await server.stop()
  }
}

describe('the ingest references', () => {
  test('plain bun:sqlite stores the reading and event rows Vigía stores on SQLite', async () => {
    const { fleet, template: t } = await detected()
    const vars = fleet.vars as VariableCount
    const vigiaFile = join(dir, 'vigia.db')
    await throughVigia({ sqliteFile: vigiaFile }, vars, fleet.startMs)

    const ref = new Database(join(dir, 'ref.db'), { create: true })
    SqliteWriter.pragmas(ref)
    await migrateSqlite(ref)
    const w = new SqliteWriter(ref, sqliteLayout(ref), { events: t })
    w.createSensors(SENSORS)
    w.ensureLookups(VARIABLES.slice(0, vars))
    w.write(readings(vars, fleet.startMs))

    const vigia = new Database(vigiaFile, { readonly: true })
    const layout = sqliteLayout(vigia)
    for (const table of readingTables(layout)) {
      const rows = (db: Database) =>
        db.query(`select * from "${table}" order by rowid`).all() as Record<string, unknown>[]
      expect(rows(ref).map(strip)).toEqual(rows(vigia).map(strip))
      expect(rows(ref).length).toBeGreaterThanOrEqual(12)
    }
    const events = (db: Database) =>
      db
        .query(
          `select channels, payload from events where payload like '%"entity_type":"reading"%' order by seq`,
        )
        .all() as { channels: string; payload: string }[]
    // Vigía's rows as its log reads them: a reading's `created` row is lean, its frame rebuilt.
    const fromVigia = await vigiaFrames(drizzle(vigia, { schema }))
    expect(fromVigia).toHaveLength(12)
    expect(events(ref).map((e) => [e.channels, frame(e.payload)])).toEqual(fromVigia)
    vigia.close()
    ref.close()
  })

  test('plain postgres.js stores the reading and event rows Vigía stores on PostgreSQL', async () => {
    const { fleet, template: t } = await detected()
    const vars = fleet.vars as VariableCount
    const vigiaDb = await freshDatabase()
    const refDb = await freshDatabase()
    const vigia = postgres(vigiaDb.url, { max: 1, onnotice: () => {} })
    const ref = postgres(refDb.url, { max: 1, onnotice: () => {} })
    try {
      await throughVigia({ postgresUrl: vigiaDb.url }, vars, fleet.startMs)
      await migratePostgres(ref)
      const w = new PgWriter(ref, await postgresLayout(ref), { events: t })
      await w.createSensors(SENSORS)
      await w.ensureLookups(VARIABLES.slice(0, vars))
      await w.write(readings(vars, fleet.startMs))

      for (const table of readingTables(await postgresLayout(vigia))) {
        const rows = async (sql: postgres.Sql) =>
          (await sql.unsafe(`select * from "${table}" order by 1, 2`)).map((r) => strip({ ...r }))
        const expected = await rows(vigia)
        expect(expected.length).toBeGreaterThanOrEqual(12)
        expect(await rows(ref)).toEqual(expected)
      }
      const events = async (sql: postgres.Sql) =>
        (
          await sql`select channels, payload from events where payload like '%"entity_type":"reading"%' order by seq`
        ).map((e) => [e.channels, frame(e.payload)])
      const opened = await openDatabase(parseDatabaseUrl(vigiaDb.url))
      const expected = await vigiaFrames(opened.read).finally(() => opened.close())
      expect(expected).toHaveLength(12)
      expect(await events(ref)).toEqual(expected)
    } finally {
      await vigia.end({ timeout: 1 })
      await ref.end({ timeout: 1 })
      await vigiaDb.drop()
      await refDb.drop()
    }
  })
})
