// Export of readings (CONTRACT §8): a streamed export (CSV or NDJSON) read from one snapshot in pages, so
// memory stays flat whatever its size. The all-or-none CSV import is in csv-import.ts.
import { Database as SQLite } from 'bun:sqlite'
import { and, asc, eq, gt, gte, lte, or, sql, type SQL } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Tx } from '../../db'
import { readings } from '../../db/schema'
import { instant, iso } from '../../lib/time'
import type { ExportQuery } from './model'

/** Rows read from the database per page, and per chunk written to the response. */
const PAGE = 2000
const GC_EVERY_PAGES = 25

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
        .query<{ name: string }, []>(`${registered(true)} order by name`)
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
 * ingest fills, and the last-value store that corrections keep: its JSON keys), known before the first
 * row is read.
 */
const registered = (sqlite: boolean) =>
  sqlite
    ? 'select name from variables union select key as name from latest_values, json_each(latest_values.newest)'
    : 'select name from variables union select json_object_keys(newest::json) as name from latest_values'

const columnsIn = async (tx: Tx) => {
  const query = sql.raw(`${registered(isSqlite(tx))} order by name`)
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
        let n = 0
        for await (const page of pages()) {
          await push(format === 'csv' ? csvChunk(page, columns) : ndjsonChunk(page))
          // Each page leaves its rows and text as garbage, and JSC let it pile up: a 1 M-row export grew
          // the server by 101-220 MB; asking for a collection every 50,000 rows kept it to 5 MB, no slower
          // (BENCHMARKS.md, session 26).
          if (++n % GC_EVERY_PAGES === 0) Bun.gc(false)
        }
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
