// Statements prepared once per SQLite connection, and queries over a set of ids that pick the cheap
// shape for each database: on SQLite a prepared statement run per id (in-process, no round trip; building
// and preparing a statement costs more than running it), on PostgreSQL one statement per 500 ids.
import type { SQLQueryBindings } from 'bun:sqlite'
import { eq, inArray, is, Param, Placeholder, sql, type Column, type SQL } from 'drizzle-orm'
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
    const names = query.params.map((param) => {
      const value = is(param, Param) ? param.value : param
      if (!is(value, Placeholder))
        throw new Error(`rawRun(${key}): every parameter must be a placeholder`)
      return value.name
    })
    const statement = sqliteClient(tx).prepare(query.sql)
    const args: SQLQueryBindings[] = new Array(names.length)
    return (values) => {
      for (let i = 0; i < names.length; i++) args[i] = values[names[i]!]
      statement.run(...args)
    }
  })
}

/** A query narrowed by `match(column)`: drizzle's builder before it runs (awaitable, preparable). */
type Narrowed<R> = PromiseLike<R[]> & {
  prepare(): { all(values: { id: number }): R[] | Promise<R[]> }
}

/**
 * Every row `build` selects for these ids, where `build` narrows its query with `match(idColumn)`.
 * `key` names the query for the statement cache. Rows come grouped by id, in `build`'s order within one.
 */
export async function selectByIds<R>(
  tx: Tx,
  key: string,
  ids: readonly number[],
  build: (match: (column: Column) => SQL) => Narrowed<R>,
): Promise<R[]> {
  const out: R[] = []
  if (isSqlite(tx)) {
    const statement = prepared(tx, `select:${key}`, () =>
      build((column) => eq(column, sql.placeholder('id'))).prepare(),
    )
    for (const id of ids) for (const row of await statement.all({ id })) out.push(row)
    return out
  }
  for (let i = 0; i < ids.length; i += 500) {
    const chunk = ids.slice(i, i + 500)
    for (const row of await build((column) => inArray(column, chunk))) out.push(row)
  }
  return out
}
