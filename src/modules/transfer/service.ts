// Export and import of readings (CONTRACT §8): a streamed export (CSV or NDJSON) read from one snapshot
// in pages, so memory stays flat whatever its size, and an all-or-none CSV import through the batch
// ingest's parts (sensor check, variable registry, insert with one event per reading, latest values).
import { Database as SQLite } from 'bun:sqlite'
import { CsvError, parse } from 'csv-parse/sync'
import { and, asc, eq, gt, gte, lte, or, sql, type SQL } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Tx } from '../../db'
import { readings } from '../../db/schema'
import { insertMany } from '../../lib/crud'
import { AppError } from '../../lib/errors'
import { instant, iso, readingTimeProblem, parseIso } from '../../lib/time'
import { updateLatest } from '../latest/service'
import { sensorStatuses } from '../liveness/service'
import { readingResource } from '../readings/service'
import { MAX_MEASUREMENTS } from '../readings/model'
import { isVariableName, physicalBounds } from '../readings/values'
import { NAME_RULE } from '../variables/model'
import { registerVariables, rememberVariables, unregistered } from '../variables/service'
import type { ExportQuery } from './model'

/** Rows read from the database per page, and per chunk written to the response. */
const PAGE = 2000

interface RawRow {
  id: number
  sensor_id: number
  timestamp: number
  /** The stored JSON text of the measurements. */
  values: string
}

interface Filter {
  sensorId?: number
  from?: number
  to?: number
}

/** A source of pages in (timestamp, id) order, all from one snapshot, and the variables they can hold. */
type Produce = (
  filter: Filter,
  body: (columns: string[], pages: () => AsyncIterable<RawRow[]>) => Promise<void>,
) => Promise<void>

/**
 * SQLite file: its own read-only connection, so the export's snapshot (one read transaction, WAL keeps
 * it while writers go on) neither blocks the server's reader nor shows other requests a stale state.
 * One statement walks every row: the snapshot and the sort are SQLite's, the rows come as asked for.
 */
const sqliteSource =
  (path: string): Produce =>
  async (filter, body) => {
    const conn = new SQLite(path, { readonly: true })
    try {
      conn.run('PRAGMA busy_timeout = 5000')
      conn.run('BEGIN')
      const where: string[] = []
      const params: number[] = []
      if (filter.sensorId !== undefined) where.push('sensor_id = ?') && params.push(filter.sensorId)
      if (filter.from !== undefined) where.push('timestamp >= ?') && params.push(filter.from)
      if (filter.to !== undefined) where.push('timestamp <= ?') && params.push(filter.to)
      const columns = conn
        .query<{ name: string }, []>(`${REGISTERED} order by name`)
        .all()
        .map((r) => r.name)
      const rows = conn
        .query<RawRow, number[]>(
          `select id, sensor_id, timestamp, "values" from readings${where.length ? ` where ${where.join(' and ')}` : ''} order by timestamp, id`,
        )
        .iterate(...params)
      await body(columns, async function* () {
        let page: RawRow[] = []
        for (const row of rows) {
          page.push(row)
          if (page.length === PAGE) {
            yield page
            page = []
          }
        }
        if (page.length) yield page
      })
    } finally {
      conn.close()
    }
  }

const conditions = (filter: Filter): SQL[] =>
  [
    filter.sensorId !== undefined ? eq(readings.sensor_id, filter.sensorId) : undefined,
    filter.from !== undefined ? gte(readings.timestamp, filter.from) : undefined,
    filter.to !== undefined ? lte(readings.timestamp, filter.to) : undefined,
  ].filter((c): c is SQL => c !== undefined)

/**
 * The CSV's variable columns: every name the server knows readings to carry (the registry that every
 * ingest fills, and the last-value store that corrections keep), known before the first row is read.
 */
const REGISTERED = 'select name from variables union select variable as name from latest_values'

const columnsIn = async (tx: Tx) => {
  const query = sql.raw(`${REGISTERED} order by name`)
  const rows = isSqlite(tx)
    ? await tx.all<{ name: string }>(query)
    : await (tx as unknown as { execute(q: SQL): Promise<{ name: string }[]> }).execute(query)
  return rows.map((r) => r.name)
}

/**
 * PostgreSQL: a repeatable-read transaction (one snapshot) with a cursor, fetched a page at a time; the
 * sort runs once, within work_mem or on disk, never in this process.
 */
const postgresSource: (services: Services) => Produce = (services) => (filter, body) =>
  services.db.snapshot(async (tx) => {
    const pg = tx as unknown as { execute(query: SQL): Promise<Record<string, unknown>[]> }
    const where = conditions(filter)
    // A cursor is planned for its first rows by default (cursor_tuple_fraction 0.1); an export reads all.
    await pg.execute(sql`set local cursor_tuple_fraction = 1`)
    await pg.execute(
      sql`declare export_cursor no scroll cursor for select id, sensor_id, timestamp, "values"::text as values from readings ${where.length ? sql`where ${and(...where)}` : sql``} order by timestamp, id`,
    )
    await body(await columnsIn(tx), async function* () {
      for (;;) {
        const rows = await pg.execute(sql.raw(`fetch ${PAGE} from export_cursor`))
        if (rows.length === 0) return
        yield rows as unknown as RawRow[]
        if (rows.length < PAGE) return
      }
    })
  })

/** In-memory SQLite (development): keyset pages in the database's own snapshot. */
const keysetSource: (services: Services) => Produce = (services) => (filter, body) =>
  services.db.snapshot(async (tx) => {
    await body(await columnsIn(tx), async function* () {
      let after: { timestamp: number; id: number } | undefined
      for (;;) {
        const rows = await tx
          .select()
          .from(readings)
          .where(
            and(
              ...conditions(filter),
              after &&
                or(
                  gt(readings.timestamp, after.timestamp),
                  and(eq(readings.timestamp, after.timestamp), gt(readings.id, after.id)),
                ),
            ),
          )
          .orderBy(asc(readings.timestamp), asc(readings.id))
          .limit(PAGE)
        if (rows.length === 0) return
        yield rows.map((r) => ({ ...r, values: JSON.stringify(r.values) }))
        after = rows.at(-1)!
      }
    })
  })

/** A body fed by `produce`, which waits for the reader to take a chunk before it writes the next. */
function pacedStream(
  produce: (push: (chunk: string) => Promise<void>) => Promise<void>,
  onError: (error: unknown) => void,
) {
  const encoder = new TextEncoder()
  let wake: (() => void) | undefined
  let cancelled = false
  const stopped = new Error('export cancelled by the client')
  return new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const push = async (chunk: string) => {
          if (cancelled) throw stopped
          controller.enqueue(encoder.encode(chunk))
          if ((controller.desiredSize ?? 0) <= 0) await new Promise<void>((r) => (wake = r))
          if (cancelled) throw stopped
        }
        produce(push).then(
          () => controller.close(),
          (error) => {
            if (cancelled) return
            onError(error)
            controller.error(error)
          },
        )
      },
      pull() {
        wake?.()
        wake = undefined
      },
      cancel() {
        cancelled = true
        wake?.()
      },
    },
    { highWaterMark: 2 },
  )
}

/** A CSV line per reading: every field is a number or an ISO time, so none needs quoting. */
function csvChunk(rows: RawRow[], columns: string[]) {
  let out = ''
  for (const row of rows) {
    const values = JSON.parse(row.values) as Record<string, number>
    out += `${row.id},${row.sensor_id},${iso(Number(row.timestamp))}`
    let written = 0
    for (const name of columns) {
      const value = values[name]
      if (value === undefined) out += ','
      else {
        out += `,${value}`
        written += 1
      }
    }
    out += '\n'
    // A name outside the registry (a row written around the server) would be dropped: fail instead.
    let count = 0
    for (const _ in values) count += 1
    if (count !== written)
      throw new Error(
        `reading ${row.id} carries a variable missing from the variables table; the export stopped rather than drop it`,
      )
  }
  return out
}

function ndjsonChunk(rows: RawRow[]) {
  let out = ''
  for (const row of rows)
    out += `{"id":${row.id},"sensor_id":${row.sensor_id},"timestamp":"${iso(Number(row.timestamp))}","values":${row.values}}\n`
  return out
}

export interface ExportOptions {
  /** The SQLite file, when the database is one (its own connection reads the export). */
  sqlitePath?: string
  onError: (error: unknown) => void
}

/**
 * Every reading the filters match, oldest first (then by id), as CSV or NDJSON, streamed from one
 * snapshot of the database: readings written while it runs are not in it. The filters are checked
 * before the answer starts (a bad `from` is a 422, not a broken stream).
 */
export function exportReadings(services: Services, query: ExportQuery, options: ExportOptions) {
  const format = query.format ?? 'csv'
  const filter: Filter = {
    sensorId: query.sensor_id,
    from: query.from === undefined ? undefined : instant(query.from, 'from'),
    to: query.to === undefined ? undefined : instant(query.to, 'to'),
  }
  const source =
    services.db.dialect === 'postgres'
      ? postgresSource(services)
      : options.sqlitePath && options.sqlitePath !== ':memory:'
        ? sqliteSource(options.sqlitePath)
        : keysetSource(services)
  const body = pacedStream(
    (push) =>
      source(filter, async (columns, pages) => {
        if (format === 'csv')
          await push(`${['id', 'sensor_id', 'timestamp', ...columns].join(',')}\n`)
        for await (const page of pages())
          await push(format === 'csv' ? csvChunk(page, columns) : ndjsonChunk(page))
      }),
    options.onError,
  )
  const stamp = iso(Date.now()).replaceAll(':', '-')
  const scope = query.sensor_id === undefined ? '' : `-sensor-${query.sensor_id}`
  return new Response(body, {
    headers: {
      'content-type':
        format === 'csv' ? 'text/csv; charset=utf-8' : 'application/x-ndjson; charset=utf-8',
      'content-disposition': `attachment; filename="readings${scope}-${stamp}.${format}"`,
      'cache-control': 'no-store',
    },
  })
}

/** A 422 naming the CSV line (1 is the header) and, where there is one, the column. */
class ImportLineError extends AppError {
  constructor(line: number, column: string | undefined, message: string) {
    super(422, 'validation_error', `Line ${line}${column ? `, ${column}` : ''}: ${message}`, {
      field: column ? `line ${line}.${column}` : `line ${line}`,
      line,
    })
  }
}

const NUMBER = /^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/
const SENSOR_ID = /^[1-9]\d{0,15}$/
const FIXED = ['sensor_id', 'timestamp']

interface Parsed {
  line: number
  cells: string[]
}

/** The CSV's records with their line numbers; a 422 naming the line the parser stopped at. */
function records(text: string): Parsed[] {
  const out: Parsed[] = []
  try {
    parse(text, {
      skip_empty_lines: true,
      on_record: (record: string[], context: { lines: number }) => {
        out.push({ line: context.lines, cells: record })
        return null
      },
    })
  } catch (error) {
    if (!(error instanceof CsvError)) throw error
    const line = (error as CsvError & { lines?: number }).lines ?? 0
    throw new ImportLineError(
      line,
      undefined,
      `${error.message.replace(/ on line \d+$/, '')}; every line needs as many cells as the header.`,
    )
  }
  return out
}

/** The header: optional `id`, then sensor_id,timestamp and at least one distinct variable name. */
function header(first: Parsed) {
  const cells = first.cells.map((c) => c.trim())
  const skipId = cells[0] === 'id'
  const names = skipId ? cells.slice(1) : cells
  const layout = `the header must be sensor_id,timestamp then variable names, such as sensor_id,timestamp,humedad,temperatura (an export's leading id column is accepted)`
  if (names[0] !== FIXED[0] || names[1] !== FIXED[1])
    throw new ImportLineError(1, undefined, `${layout}; got ${cells.join(',').slice(0, 120)}.`)
  const variables = names.slice(2)
  if (variables.length === 0)
    throw new ImportLineError(1, undefined, `${layout}; no variable column.`)
  if (variables.length > MAX_MEASUREMENTS)
    throw new ImportLineError(1, undefined, `at most ${MAX_MEASUREMENTS} variable columns.`)
  const seen = new Set<string>()
  for (const name of variables) {
    if (!isVariableName(name))
      throw new ImportLineError(
        1,
        name.slice(0, 80),
        `"${name.slice(0, 80)}" is not a valid variable name: use ${NAME_RULE}.`,
      )
    if (seen.has(name)) throw new ImportLineError(1, name, `${name} is a column twice.`)
    seen.add(name)
  }
  return { offset: skipId ? 1 : 0, variables }
}

/** One data line as a row to insert; a 422 naming the line and column of its first problem. */
function toRow(record: Parsed, offset: number, variables: string[], now: number) {
  const { line, cells } = record
  const sensor = cells[offset]!.trim()
  if (!SENSOR_ID.test(sensor))
    throw new ImportLineError(
      line,
      'sensor_id',
      `"${sensor.slice(0, 40)}" is not a sensor id (a positive integer).`,
    )
  const time = cells[offset + 1]!.trim()
  const ms = parseIso(time)
  if (ms === undefined)
    throw new ImportLineError(
      line,
      'timestamp',
      `"${time.slice(0, 40)}" is not a real date-time; use ISO 8601 such as 2025-07-20T10:30:00Z.`,
    )
  const problem = readingTimeProblem(ms, now)
  if (problem) throw new ImportLineError(line, 'timestamp', `${problem}.`)
  const values: Record<string, number> = {}
  let count = 0
  for (let i = 0; i < variables.length; i++) {
    const cell = cells[offset + 2 + i]!.trim()
    if (cell === '') continue
    const name = variables[i]!
    const value = Number(cell)
    if (!NUMBER.test(cell) || !Number.isFinite(value))
      throw new ImportLineError(
        line,
        name,
        `"${cell.slice(0, 40)}" is not a finite number; leave the cell empty when the reading has no ${name}.`,
      )
    const bounds = physicalBounds(name)
    if (bounds && (value < bounds.minimum || value > bounds.maximum))
      throw new ImportLineError(
        line,
        name,
        `${value} is outside ${bounds.minimum}..${bounds.maximum}, the physical range of ${name}.`,
      )
    values[name] = value
    count += 1
  }
  if (count === 0)
    throw new ImportLineError(
      line,
      undefined,
      'the reading has no measurement: fill at least one variable cell.',
    )
  return { sensor_id: Number(sensor), values, timestamp: ms, created_at: now }
}

/** Up to this many readings, an import emits one `created` event per reading, like a batch. */
export const IMPORT_EVENT_LIMIT = 1000

/** The one event of a larger import: a system_event on general and readings. */
function summary(stored: { id: number }[], rows: { sensor_id: number; timestamp: number }[]) {
  let from = Infinity
  let to = -Infinity
  const sensors = new Set<number>()
  for (const row of rows) {
    from = Math.min(from, row.timestamp)
    to = Math.max(to, row.timestamp)
    sensors.add(row.sensor_id)
  }
  return {
    level: 'info' as const,
    message: `Imported ${rows.length} readings of ${sensors.size} sensors, ${iso(from)} to ${iso(to)}.`,
    channel: 'readings',
    data: {
      action: 'readings_imported',
      imported: rows.length,
      first_id: stored[0]!.id,
      last_id: stored.at(-1)!.id,
      sensor_ids: [...sensors].sort((a, b) => a - b),
      from: iso(from),
      to: iso(to),
    },
  }
}

/**
 * Stores every reading of a CSV in one transaction, or none (a 422 names the first bad line). Like a
 * batch: unknown sensors are refused, new variable names registered, latest values kept, one `created`
 * event per reading up to IMPORT_EVENT_LIMIT (a larger import emits one summary system_event instead).
 * Unlike a batch (imported readings are history, not news): sensors' liveness is not touched and the
 * anomaly detector does not run.
 */
export async function importReadings(services: Services, text: unknown) {
  if (text !== undefined && typeof text !== 'string')
    throw new AppError(
      415,
      'unsupported_media_type',
      'Send the readings as CSV with Content-Type: text/csv (a JSON array goes to POST /api/v1/readings/batch).',
    )
  if (text === undefined || text.trim() === '')
    throw new AppError(
      422,
      'validation_error',
      'The CSV is empty: send a header line sensor_id,timestamp,<variable>… and one line per reading.',
      { field: 'body' },
    )
  const now = Date.now()
  const all = records(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text)
  const { offset, variables } = header(all[0]!)
  const width = offset + 2 + variables.length
  if (all.length < 2)
    throw new ImportLineError(
      2,
      undefined,
      'the CSV has a header but no reading; add one line per reading.',
    )
  const lines: number[] = []
  const rows: ReturnType<typeof toRow>[] = []
  for (let i = 1; i < all.length; i++) {
    const record = all[i]!
    if (record.cells.length !== width)
      throw new ImportLineError(
        record.line,
        undefined,
        `${record.cells.length} cells where the header has ${width}.`,
      )
    rows.push(toRow(record, offset, variables, now))
    lines.push(record.line)
  }
  const fresh = unregistered(services, variables)
  const each = rows.length <= IMPORT_EVENT_LIMIT
  const count = await services.emitter.transact(async (tx, emit, system) => {
    const statuses = await sensorStatuses(
      tx,
      rows.map((r) => r.sensor_id),
    )
    const missing = rows.findIndex((r) => !statuses.has(r.sensor_id))
    if (missing >= 0)
      throw new AppError(
        422,
        'unknown_reference',
        `Line ${lines[missing]}, sensor_id: sensor ${rows[missing]!.sensor_id} does not exist; create it with POST /api/v1/sensors before importing its readings.`,
        {
          field: `line ${lines[missing]}.sensor_id`,
          line: lines[missing],
          id: rows[missing]!.sensor_id,
        },
      )
    await registerVariables(tx, fresh, now)
    const stored = await insertMany(tx, each ? emit : () => undefined, readingResource, rows)
    if (!each) system(summary(stored, rows))
    await updateLatest(
      tx,
      stored.map((reading, i) => ({ ...reading, t: rows[i]!.timestamp })),
    )
    return stored.length
  })
  rememberVariables(services, fresh)
  return { imported: count }
}
