// Statements prepared once per SQLite connection, and queries over a set of ids that pick the cheap
// shape for each database: on SQLite one prepared statement for any number of ids (the ids as a JSON
// array read by json_each: an IN list would be a new statement per count), on PostgreSQL likewise (one
// array parameter, `= any`).
import type { SQLQueryBindings } from 'bun:sqlite'
import { eq, is, Param, Placeholder, sql, type Column, type SQL } from 'drizzle-orm'
import * as drizzleUtils from 'drizzle-orm/utils'
import { isSqlite, sqliteClient, type Tx } from '.'

const statements = new WeakMap<Tx, Map<string, unknown>>()

/** The statement `build` makes, made once per connection and key. */
export function prepared<S>(tx: Tx, key: string, build: () => S): S {
  let byKey = statements.get(tx)
  if (!byKey) statements.set(tx, (byKey = new Map()))
  let statement = byKey.get(key) as S | undefined
  if (statement === undefined) byKey.set(key, (statement = build()))
  return statement
}

/** The names of a built statement's placeholders, in the order of its parameters. */
function placeholderNames(key: string, params: unknown[]) {
  return params.map((param) => {
    const value = is(param, Param) ? param.value : param
    if (!is(value, Placeholder)) throw new Error(`${key}: every parameter must be a placeholder`)
    return value.name as string
  })
}

/**
 * A drizzle statement of named placeholders, prepared once and run straight on bun:sqlite: drizzle fills
 * and maps the placeholders on every run, which cost more than SQLite's own work for the small upserts
 * the ingest path runs per sensor. The values given must be what the columns store (numbers, text).
 */
export function rawRun(
  tx: Tx,
  key: string,
  build: () => { toSQL(): { sql: string; params: unknown[] } },
): (values: Record<string, SQLQueryBindings>) => void {
  return prepared(tx, `raw:${key}`, () => {
    const query = build().toSQL()
    const names = placeholderNames(key, query.params)
    const statement = sqliteClient(tx).prepare(query.sql)
    const args: SQLQueryBindings[] = new Array(names.length)
    return (values) => {
      for (let i = 0; i < names.length; i++) args[i] = values[names[i]!]
      statement.run(...args)
    }
  })
}

const ROWS_PER_RUN = 8

/**
 * rawRun for a statement of several rows (a multi-row insert of these columns): `build` makes it from
 * rows of placeholders. Rows are written up to ROWS_PER_RUN per run: one run of five upserts cost about
 * two thirds of five runs of one.
 */
export function rawRunRows(
  tx: Tx,
  key: string,
  columns: readonly string[],
  build: (rows: Record<string, Placeholder>[]) => {
    toSQL(): { sql: string; params: unknown[] }
  },
): (rows: readonly Record<string, SQLQueryBindings>[]) => void {
  const runOf = (n: number) =>
    prepared(tx, `raw-rows:${key}:${n}`, () => {
      const rows = Array.from({ length: n }, (_, row) =>
        Object.fromEntries(columns.map((column) => [column, sql.placeholder(`${row}.${column}`)])),
      )
      const query = build(rows).toSQL()
      const names = placeholderNames(key, query.params)
      const row = names.map((name) => Number(name.slice(0, name.indexOf('.'))))
      const column = names.map((name) => name.slice(name.indexOf('.') + 1))
      const statement = sqliteClient(tx).prepare(query.sql)
      const args: SQLQueryBindings[] = new Array(names.length)
      return (values: readonly Record<string, SQLQueryBindings>[], from: number) => {
        for (let i = 0; i < names.length; i++) args[i] = values[from + row[i]!]![column[i]!]!
        statement.run(...args)
      }
    })
  return (rows) => {
    for (let from = 0; from < rows.length; from += ROWS_PER_RUN)
      runOf(Math.min(ROWS_PER_RUN, rows.length - from))(rows, from)
  }
}

/** A query narrowed by `match(column)`: drizzle's builder before it runs (awaitable, preparable). */
type Narrowed<R> = PromiseLike<R[]> & {
  prepare(): { all(values: { id: number }): R[] | Promise<R[]> }
}

/**
 * Every row `build` selects for these ids, where `build` narrows its query with `match(idColumn)`.
 * `key` names the query for the statement cache. Rows come in no set order.
 */
export async function selectByIds<R>(
  tx: Tx,
  key: string,
  ids: readonly number[],
  build: (match: (column: Column) => SQL) => Narrowed<R>,
): Promise<R[]> {
  if (ids.length === 0) return []
  if (isSqlite(tx)) {
    // One id: a plain equality. Several: one run over all of them, not one per id (a run costs 1-2 µs
    // through drizzle; a single POST's transaction of 64 sensors ran about 250 of them).
    if (ids.length === 1) {
      const statement = prepared(tx, `select:${key}`, () =>
        build((column) => eq(column, sql.placeholder('id'))).prepare(),
      )
      return statement.all({ id: ids[0]! })
    }
    const statement = prepared(tx, `select-each:${key}`, () =>
      build(
        (column) => sql`${column} in (select value from json_each(${sql.placeholder('ids')}))`,
      ).prepare(),
    ) as unknown as { all(values: { ids: string }): R[] | Promise<R[]> }
    return statement.all({ ids: JSON.stringify(ids) })
  }
  return runBuilt(tx, key, ids, build)
}

/** A select built once per key (PostgreSQL): its text, parameters and fields. */
interface Built {
  query: { sql: string; params: unknown[] }
  fields: unknown
  joins: unknown
}
const built = new Map<string, Built>()
const { orderSelectedFields } = drizzleUtils as unknown as {
  orderSelectedFields?: (fields: Record<string, unknown>) => unknown
}

/** drizzle's select builder and session, as far as running a built query needs them. */
interface DrizzleSelect {
  dialect: { sqlToQuery(sql: SQL): { sql: string; params: unknown[] } }
  getSQL(): SQL
  config: { fields: Record<string, unknown> }
  joinsNotNullableMap: unknown
}
interface DrizzleSession {
  prepareQuery(
    query: Built['query'],
    fields: unknown,
    name: undefined,
    arrayMode: boolean,
  ): { joinsNotNullableMap: unknown; execute(values: Record<string, unknown>): Promise<unknown[]> }
}

/** PostgreSQL's array literal of these ids. */
const idList = (ids: readonly number[]) => `{${ids.join(',')}}`

/**
 * PostgreSQL: `column = any(ids)`, the ids (or a placeholder for them) as one array parameter: one
 * statement text whatever their count, so it is prepared (an IN list is a text per count, and past 32
 * parameters postgres.ts leaves it unprepared).
 */
export const anyId = (column: Column, ids: readonly number[] | Placeholder) =>
  sql`${column} = any(${is(ids, Placeholder) ? ids : idList(ids as readonly number[])}::bigint[])`

/**
 * PostgreSQL: runs the select for these ids through the transaction's session as drizzle would, with
 * its text built once per key (building a select cost drizzle 20-50 µs, about a seventh of a lone
 * single POST's CPU, for the same text every time). The ids travel as one array (anyId).
 */
async function runBuilt<R>(
  tx: Tx,
  key: string,
  ids: readonly number[],
  build: (match: (column: Column) => SQL) => Narrowed<R>,
): Promise<R[]> {
  const session = (tx as unknown as { session?: Partial<DrizzleSession> }).session
  // drizzle's internals as of the locked version; without them, its own builder every time.
  if (typeof session?.prepareQuery !== 'function' || typeof orderSelectedFields !== 'function')
    return build((column) => anyId(column, ids))
  let query = built.get(key)
  if (!query) {
    const select = build((column) =>
      anyId(column, sql.placeholder('ids')),
    ) as unknown as DrizzleSelect
    query = {
      query: select.dialect.sqlToQuery(select.getSQL()),
      fields: orderSelectedFields(select.config.fields),
      joins: select.joinsNotNullableMap,
    }
    built.set(key, query)
  }
  const prepared = session.prepareQuery(query.query, query.fields, undefined, true)
  prepared.joinsNotNullableMap = query.joins
  return (await prepared.execute({ ids: idList(ids) })) as R[]
}
