// Vigía's storage layout as the build under test has it: the bench applies the build's own migrations
// (drizzle/sqlite, drizzle/postgres, generated from src/db/schema.ts and pg-schema.ts) to a fresh database
// and reads the tables back, so the reference writers and the history builder write the same rows into
// the same columns and indexes whatever the layout becomes. Columns are filled by name; a required column
// the rules below do not know stops the run with a message that names it.
import type { Database } from 'bun:sqlite'
import { join } from 'node:path'
import type { Sql } from 'postgres'
import { VARIABLES, type FleetReading } from './fleet'
import { ROOT } from './servers'

export const MIGRATIONS = {
  sqlite: join(ROOT, 'drizzle', 'sqlite'),
  postgres: join(ROOT, 'drizzle', 'postgres'),
}

export interface Column {
  name: string
  /** SQLite declared type or PostgreSQL udt name (int8, float8, text, jsonb, timestamptz, …). */
  type: string
  notNull: boolean
  hasDefault: boolean
  /** Filled by the database (an autoincrement or identity key). */
  generated: boolean
  /** Part of the primary key. */
  pk: boolean
}

export interface Table {
  name: string
  columns: Column[]
  /** column → referenced table */
  references: Map<string, string>
}

export type Layout = Map<string, Table>

export async function migrateSqlite(db: Database) {
  const { drizzle } = await import('drizzle-orm/bun-sqlite')
  const { migrate } = await import('drizzle-orm/bun-sqlite/migrator')
  migrate(drizzle(db), { migrationsFolder: MIGRATIONS.sqlite })
}

export async function migratePostgres(sql: Sql) {
  const { drizzle } = await import('drizzle-orm/postgres-js')
  const { migrate } = await import('drizzle-orm/postgres-js/migrator')
  await migrate(drizzle(sql), { migrationsFolder: MIGRATIONS.postgres })
}

export function sqliteLayout(db: Database): Layout {
  const layout: Layout = new Map()
  const names = db
    .query<{ name: string }, []>(
      "select name from sqlite_master where type = 'table' and name not like 'sqlite_%' and name not like '__drizzle%'",
    )
    .all()
  for (const { name } of names) {
    const info = db
      .query<{ name: string; type: string; notnull: number; dflt_value: unknown; pk: number }, []>(
        `pragma table_info("${name}")`,
      )
      .all()
    const pks = info.filter((c) => c.pk > 0)
    const columns = info.map((c) => ({
      name: c.name,
      type: c.type.toLowerCase(),
      notNull: c.notnull === 1 || c.pk > 0,
      hasDefault: c.dflt_value !== null,
      // A lone INTEGER PRIMARY KEY is the rowid: SQLite fills it.
      generated: c.pk > 0 && pks.length === 1 && c.type.toUpperCase() === 'INTEGER',
      pk: c.pk > 0,
    }))
    const fks = db
      .query<{ from: string; table: string }, []>(`pragma foreign_key_list("${name}")`)
      .all()
    layout.set(name, { name, columns, references: new Map(fks.map((f) => [f.from, f.table])) })
  }
  return layout
}

export async function postgresLayout(sql: Sql): Promise<Layout> {
  const layout: Layout = new Map()
  const cols = await sql<
    {
      table_name: string
      column_name: string
      udt_name: string
      is_nullable: string
      column_default: string | null
      is_identity: string
    }[]
  >`select table_name, column_name, udt_name, is_nullable, column_default, is_identity
    from information_schema.columns where table_schema = 'public' order by table_name, ordinal_position`
  for (const c of cols) {
    if (c.table_name.startsWith('__drizzle')) continue
    let table = layout.get(c.table_name)
    if (!table)
      layout.set(c.table_name, (table = { name: c.table_name, columns: [], references: new Map() }))
    table.columns.push({
      name: c.column_name,
      type: c.udt_name,
      notNull: c.is_nullable === 'NO',
      hasDefault: c.column_default !== null,
      generated: c.is_identity === 'YES' || /^nextval\(/.test(c.column_default ?? ''),
      pk: false,
    })
  }
  const pks = await sql<{ table_name: string; column_name: string }[]>`
    select kcu.table_name, kcu.column_name from information_schema.table_constraints tc
    join information_schema.key_column_usage kcu on tc.constraint_name = kcu.constraint_name and tc.table_schema = kcu.table_schema
    where tc.constraint_type = 'PRIMARY KEY' and tc.table_schema = 'public'`
  for (const k of pks) {
    const column = layout.get(k.table_name)?.columns.find((c) => c.name === k.column_name)
    if (column) column.pk = true
  }
  const fks = await sql<{ table_name: string; column_name: string; ref: string }[]>`
    select kcu.table_name, kcu.column_name, ccu.table_name as ref
    from information_schema.table_constraints tc
    join information_schema.key_column_usage kcu on tc.constraint_name = kcu.constraint_name and tc.table_schema = kcu.table_schema
    join information_schema.constraint_column_usage ccu on tc.constraint_name = ccu.constraint_name and tc.table_schema = ccu.table_schema
    where tc.constraint_type = 'FOREIGN KEY' and tc.table_schema = 'public'`
  for (const f of fks) layout.get(f.table_name)?.references.set(f.column_name, f.ref)
  return layout
}

/** What one written row is about; a column's value is worked out from it. */
export interface RowContext {
  reading?: FleetReading
  /** The parent reading's id, for tables that reference readings. */
  readingId?: number
  /** For per-variable tables: one row per variable. */
  variable?: string
  value?: number
  /** Ids of rows in lookup tables (a variables table), by name. */
  lookup?: (table: string, name: string) => number
  /** Event-log rows. */
  event?: { seq: number; channels: string; payload: string }
  now: number
}

const TIME = /^(timestamp|ts|time|measured_at|at)$/
const CREATED = /^(created_at|updated_at|received_at|stored_at)$/
const JSONISH = /^(values|data|measurements|readings|payload_values)$/

const isText = (type: string) => /char|text|clob|json/.test(type)
const isTimestamp = (type: string) => type.startsWith('timestamp')

/**
 * How one column is filled: a JavaScript expression over the row context `x` (compiled with the other
 * columns into one function per table, as a hand-written writer would spell the row), or `skip` (the
 * database fills it). Throws for a required column it does not know.
 */
export type Filler = string | 'skip'

export function fillerFor(table: Table, c: Column): Filler {
  const ref = table.references.get(c.name)
  const time = (ms: string) => (isText(c.type) || isTimestamp(c.type) ? `isoFull(${ms})` : ms)
  const name = JSON.stringify(c.name)
  if (c.generated) return 'skip'
  if (table.name === 'events' || table.name.endsWith('_events')) {
    if (c.name === 'seq') return 'x.event.seq'
    if (c.name === 'channels') return 'x.event.channels'
    if (c.name === 'payload') return 'x.event.payload'
    // The references keep each whole frame (the reference); Vigía's lean rows name their reading.
    if (c.name === 'reading_id') return 'null'
  }
  if (c.name === 'sensor_id') return 'x.reading.sensor_id'
  if (ref === 'readings' || c.name === 'reading_id') return 'x.readingId'
  if (TIME.test(c.name)) return time('x.reading.ms')
  if (CREATED.test(c.name)) return time('x.now')
  if ((VARIABLES as readonly string[]).includes(c.name))
    return `(x.reading.values[${name}] ?? null)`
  // A reference to a variables table: by id, or by the name itself (the row must exist either way).
  if (ref && /^(variable|variable_id|name_id)$/.test(c.name))
    return isText(c.type)
      ? `(x.lookup(${JSON.stringify(ref)}, x.variable), x.variable)`
      : `x.lookup(${JSON.stringify(ref)}, x.variable)`
  if (/^(variable|name|key)$/.test(c.name) && isText(c.type)) return 'x.variable'
  if (/^(value|val)$/.test(c.name)) return 'x.value'
  if (JSONISH.test(c.name) && isText(c.type)) return 'JSON.stringify(x.reading.values)'
  if (c.hasDefault) return 'skip'
  if (!c.notNull) return 'null'
  throw new Error(
    `the bench does not know how to fill ${table.name}.${c.name} (${c.type}, required); teach bench/lib/layout.ts`,
  )
}

export interface TablePlan {
  table: string
  columns: string[]
  /** The row's values in column order. */
  row: (x: RowContext) => unknown[]
  /** SQL type per column, for PostgreSQL's unnest casts. */
  types: string[]
}

const isoFull = (ms: number) => new Date(ms).toISOString()

export function planTable(layout: Layout, name: string): TablePlan {
  const table = layout.get(name)
  if (!table) throw new Error(`the build under test has no table "${name}"`)
  const columns: string[] = []
  const exprs: string[] = []
  const types: string[] = []
  for (const c of table.columns) {
    const f = fillerFor(table, c)
    if (f === 'skip') continue
    columns.push(c.name)
    exprs.push(f)
    types.push(c.type)
  }
  const row = new Function('isoFull', `return (x) => [${exprs.join(', ')}]`)(isoFull)
  return { table: name, columns, row, types }
}

/**
 * The tables a stored reading writes, from the layout: `readings`, any table that references it (one row
 * per variable when it has a value column), and the lookup tables those reference (a variables table).
 */
export function readingPlan(layout: Layout) {
  const readings = planTable(layout, 'readings')
  const children: TablePlan[] = []
  const lookups = new Set<string>()
  for (const table of layout.values()) {
    if (table.name === 'readings' || table.name === 'anomalies') continue
    const refsReading = [...table.references].find(([, ref]) => ref === 'readings')?.[0]
    const hasValue = table.columns.some((c) => /^(value|val)$/.test(c.name))
    // Rows that belong to one reading: keyed by the reading (or their own id). A table keyed otherwise
    // that points at a reading (a last-value store keyed by sensor and variable) is not a copy of it.
    const ownKey = table.columns.some((c) => c.pk && (c.generated || c.name === refsReading))
    if (!refsReading || !hasValue || !ownKey) continue
    children.push(planTable(layout, table.name))
    for (const [col, ref] of table.references)
      if (ref !== 'readings' && ref !== 'sensors' && /variable|name/.test(col)) lookups.add(ref)
  }
  return { readings, children, lookups: [...lookups], events: planTable(layout, 'events') }
}

export type ReadingPlan = ReturnType<typeof readingPlan>

/** Values of one row, in the plan's column order. */
export const rowOf = (plan: TablePlan, x: RowContext): unknown[] => plan.row(x)

/** Rows of a sensors table (or any simple table) with the required columns given plain values. */
export function simpleRow(table: Table, given: Record<string, unknown>, now: number) {
  const row: Record<string, unknown> = {}
  for (const c of table.columns) {
    if (c.name in given) row[c.name] = given[c.name]
    else if (c.generated || c.hasDefault || !c.notNull) continue
    else if (CREATED.test(c.name))
      row[c.name] = isText(c.type) || isTimestamp(c.type) ? isoFull(now) : now
    else if (isText(c.type)) row[c.name] = /json/.test(c.type) ? '{}' : ''
    else row[c.name] = 0
  }
  return row
}

/**
 * The event frame of one stored reading, built like Vigía's from the frame it sent for a sample reading
 * (same keys in the same order, `data` with the stored reading's keys).
 */
export interface FrameTemplate {
  /** The frame Vigía sent for one reading, as parsed JSON. */
  frame: Record<string, unknown>
  /** Keys of `data` in order. */
  dataKeys: string[]
}

export type FrameBuilder = (r: FleetReading, id: number, seq: number, nowIso: string) => string

/**
 * Compiles the template into one function that builds the frame as a hand-written writer would (one
 * object literal, one JSON.stringify), so the reference pays no per-key bookkeeping.
 */
export function frameBuilder(t: FrameTemplate): FrameBuilder {
  const sample = t.frame.data as Record<string, unknown>
  const lit = (v: unknown) => JSON.stringify(v ?? null)
  const data = t.dataKeys.map((k) => {
    const key = JSON.stringify(k)
    if (k === 'id') return `${key}: id`
    if (k === 'sensor_id') return `${key}: r.sensor_id`
    if (k === 'timestamp') return `${key}: iso(r.ms)`
    if (k === 'created_at' || k === 'updated_at') return `${key}: nowIso`
    if (k === 'values') return `${key}: r.values`
    if ((VARIABLES as readonly string[]).includes(k)) return `${key}: r.values[${key}] ?? null`
    return `${key}: ${lit(sample[k])}`
  })
  const frame = Object.keys(t.frame).map((k) => {
    const key = JSON.stringify(k)
    if (k === 'entity_id') return `${key}: id`
    if (k === 'data') return `${key}: {${data.join(', ')}}`
    if (k === 'timestamp') return `${key}: nowIso`
    if (k === 'seq') return `${key}: seq`
    return `${key}: ${lit(t.frame[k])}`
  })
  const build = new Function(
    'iso',
    `return (r, id, seq, nowIso) => JSON.stringify({${frame.join(', ')}})`,
  )
  return build(isoShort) as FrameBuilder
}

let lastMs = NaN
let lastIso = ''

/** ISO 8601 as Vigía writes it (src/lib/time.ts: no `.000` on a whole second, the last one remembered). */
export function isoShort(ms: number) {
  if (ms === lastMs) return lastIso
  const text = new Date(ms).toISOString()
  lastMs = ms
  lastIso = text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text
  return lastIso
}

/** Channels of a reading event as Vigía stores them (see src/realtime/channels.ts and event-log.ts). */
export const readingChannels = (sensor: number) =>
  ` readings readings:${sensor} sensors:${sensor} general `
