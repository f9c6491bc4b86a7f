// Plain writers of Vigía's rows, no server in between: bun:sqlite with prepared statements and one
// transaction per batch, postgres.js with one `unnest` insert per table and batch. They write the same
// reading rows (and, for the references, the same event rows with the frame built per row) into the
// layout the build's migrations create. Used by the ingest references (bench/reference.ts) and to build
// the large history database quickly.
import type { Database, Statement } from 'bun:sqlite'
import type { Sql } from 'postgres'
import type { FleetReading } from './fleet'
import {
  frameBuilder,
  readingChannels,
  readingPlan,
  rowOf,
  simpleRow,
  type FrameBuilder,
  type FrameTemplate,
  type Layout,
  type ReadingPlan,
  type RowContext,
  type TablePlan,
} from './layout'

export interface WriterOptions {
  /** Write an event-log row per reading, its frame built like Vigía's. */
  events?: FrameTemplate
}

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`

/** The text column a lookup table is found by, and the key other tables use to point at it. */
function lookupShape(layout: Layout, table: string) {
  const t = layout.get(table)!
  const name = t.columns.find((c) => /^(name|variable|key)$/.test(c.name))
  if (!name) throw new Error(`lookup table ${table} has no name column; teach bench/lib/writers.ts`)
  const id = t.columns.find((c) => c.pk && c.name !== name.name)?.name ?? name.name
  return { t, name: name.name, id }
}

/** Inserts the sensors 1..count (the fleet) into a fresh database. */
function sensorRows(layout: Layout, count: number, now: number) {
  const table = layout.get('sensors')!
  return Array.from({ length: count }, (_, i) =>
    simpleRow(table, { id: i + 1, tipo: 'temperatura', modelo: 'DHT22' }, now),
  )
}

export class SqliteWriter {
  private readonly plan: ReadingPlan
  private readonly insert: Map<string, Statement>
  private readonly ids = new Map<string, number | string>()
  private readonly frame: FrameBuilder | undefined
  private seq = 0

  constructor(
    private readonly db: Database,
    private readonly layout: Layout,
    options: WriterOptions = {},
  ) {
    this.plan = readingPlan(layout)
    this.frame = options.events && frameBuilder(options.events)
    const prepare = (p: TablePlan) =>
      db.prepare(
        `insert into ${quote(p.table)} (${p.columns.map(quote).join(', ')}) values (${p.columns.map(() => '?').join(', ')})`,
      )
    this.insert = new Map(
      [this.plan.readings, this.plan.events, ...this.plan.children].map((p) => [
        p.table,
        prepare(p),
      ]),
    )
  }

  static pragmas(db: Database) {
    db.run('PRAGMA journal_mode = WAL')
    db.run('PRAGMA synchronous = NORMAL')
    db.run('PRAGMA foreign_keys = ON')
  }

  createSensors(count: number) {
    const now = Date.now()
    const rows = sensorRows(this.layout, count, now)
    const cols = Object.keys(rows[0]!)
    const stmt = this.db.prepare(
      `insert into sensors (${cols.map(quote).join(', ')}) values (${cols.map(() => '?').join(', ')})`,
    )
    this.db.transaction(() => {
      for (const row of rows) stmt.run(...(cols.map((c) => row[c]) as never[]))
    })()
  }

  /** Makes sure the lookup tables (a variables table) hold these names; before timing anything. */
  ensureLookups(names: string[]) {
    for (const table of this.plan.lookups) {
      const { t, name, id } = lookupShape(this.layout, table)
      for (const n of names) {
        const found = this.db
          .query<Record<string, number | string>, [string]>(
            `select ${quote(id)} as id from ${quote(table)} where ${quote(name)} = ?`,
          )
          .get(n)
        if (found) {
          this.ids.set(`${table}:${n}`, found.id!)
          continue
        }
        const row = simpleRow(t, { [name]: n }, Date.now())
        const cols = Object.keys(row)
        const r = this.db
          .prepare(
            `insert into ${quote(table)} (${cols.map(quote).join(', ')}) values (${cols.map(() => '?').join(', ')})`,
          )
          .run(...(cols.map((c) => row[c]) as never[]))
        this.ids.set(`${table}:${n}`, id === name ? n : Number(r.lastInsertRowid))
      }
    }
  }

  private readonly lookup = (table: string, name: string) =>
    this.ids.get(`${table}:${name}`) as number

  /** One transaction: the readings, their per-variable rows and (for a reference) their event rows. */
  write(batch: FleetReading[]) {
    const now = Date.now()
    const nowIso = new Date(now).toISOString()
    const { plan, insert } = this
    const readings = insert.get(plan.readings.table)!
    const children = plan.children.map((p) => [p, insert.get(p.table)!] as const)
    const events = insert.get(plan.events.table)!
    const frame = this.frame
    this.db.transaction(() => {
      const event = { seq: 0, channels: '', payload: '' }
      const x: RowContext = { now, lookup: this.lookup, event }
      for (const r of batch) {
        x.reading = r
        const id = Number(readings.run(rowOf(plan.readings, x) as never).lastInsertRowid)
        x.readingId = id
        for (const [child, stmt] of children)
          for (const variable in r.values) {
            x.variable = variable
            x.value = r.values[variable as keyof FleetReading['values']]
            stmt.run(rowOf(child, x) as never)
          }
        if (frame) {
          const seq = ++this.seq
          event.seq = seq
          event.channels = readingChannels(r.sensor_id)
          event.payload = frame(r, id, seq, nowIso)
          events.run(rowOf(plan.events, x) as never)
        }
      }
    })()
  }
}

/** The array type a column's values travel as in one unnest parameter, and the cast back. */
function unnestParam(type: string, n: number) {
  if (type === 'json' || type === 'jsonb') return `$${n}::text[]::${type}[]`
  return `$${n}::${type}[]`
}

export class PgWriter {
  private readonly plan: ReadingPlan
  private readonly ids = new Map<string, number | string>()
  private readonly frame: FrameBuilder | undefined
  /** Seqs handed out in this process, as a single writer process would; no database round trip. */
  private seq = 0

  constructor(
    private readonly sql: Sql,
    private readonly layout: Layout,
    options: WriterOptions = {},
  ) {
    this.plan = readingPlan(layout)
    this.frame = options.events && frameBuilder(options.events)
  }

  async createSensors(count: number) {
    const rows = sensorRows(this.layout, count, Date.now())
    await this.sql`insert into sensors ${this.sql(rows)}`
    // Explicit ids leave the identity sequence behind.
    await this.sql`select setval(pg_get_serial_sequence('sensors', 'id'), ${count})`.catch(
      () => undefined,
    )
  }

  async ensureLookups(names: string[]) {
    for (const table of this.plan.lookups) {
      const { t, name, id } = lookupShape(this.layout, table)
      for (const n of names) {
        const [found] = await this.sql.unsafe(
          `select ${quote(id)} as id from ${quote(table)} where ${quote(name)} = $1`,
          [n],
        )
        if (found) {
          this.ids.set(`${table}:${n}`, id === name ? n : Number(found.id))
          continue
        }
        const row = simpleRow(t, { [name]: n }, Date.now())
        const [made] = await this
          .sql`insert into ${this.sql(table)} ${this.sql(row)} returning ${this.sql(id)} as id`
        this.ids.set(`${table}:${n}`, id === name ? n : Number(made!.id))
      }
    }
  }

  private readonly lookup = (table: string, name: string) =>
    this.ids.get(`${table}:${name}`) as number

  private statement(p: TablePlan, returning = '') {
    return `insert into ${quote(p.table)} (${p.columns.map(quote).join(', ')}) select * from unnest(${p.types.map((t, i) => unnestParam(t, i + 1)).join(', ')})${returning}`
  }

  private columns(p: TablePlan, rows: unknown[][]) {
    return p.columns.map((_, i) => rows.map((row) => row[i]))
  }

  /** One transaction: one unnest insert per table for the whole batch. */
  async write(batch: FleetReading[]) {
    const now = Date.now()
    const nowIso = new Date(now).toISOString()
    const { plan } = this
    const x: RowContext = { now, lookup: this.lookup }
    const readingRows = batch.map((r) => ((x.reading = r), rowOf(plan.readings, x)))
    const frame = this.frame
    const first = frame ? this.seq + 1 : 0
    if (frame) this.seq += batch.length
    await this.sql.begin(async (tx) => {
      const ids = await tx.unsafe(
        this.statement(plan.readings, ' returning id'),
        this.columns(plan.readings, readingRows) as never[],
      )
      for (const child of plan.children) {
        const rows: unknown[][] = []
        batch.forEach((r, i) => {
          x.reading = r
          x.readingId = Number(ids[i]!.id)
          for (const variable in r.values) {
            x.variable = variable
            x.value = r.values[variable as keyof FleetReading['values']]
            rows.push(rowOf(child, x))
          }
        })
        await tx.unsafe(this.statement(child), this.columns(child, rows) as never[])
      }
      if (frame) {
        const rows = batch.map((r, i) => {
          const id = Number(ids[i]!.id)
          const seq = first + i
          x.reading = r
          x.event = {
            seq,
            channels: readingChannels(r.sensor_id),
            payload: frame(r, id, seq, nowIso),
          }
          return rowOf(plan.events, x)
        })
        await tx.unsafe(this.statement(plan.events), this.columns(plan.events, rows) as never[])
      }
    })
  }
}
