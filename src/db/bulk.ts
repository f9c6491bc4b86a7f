// PostgreSQL bulk writes: any number of rows in one statement with one parameter, a JSON array read by
// json_populate_recordset against the table's own row type. drizzle's multi-row VALUES binds one
// parameter per value and builds the statement in JavaScript, which cost more than PostgreSQL's insert.
import { getTableColumns, getTableName, sql } from 'drizzle-orm'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import type { Tx } from '.'
import { pgExecute } from './postgres'

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`

/**
 * Inserts `rows` (each with the same keys, the table's column keys; JSON columns as values) in one
 * statement. `tail` follows the SELECT (ON CONFLICT …, RETURNING …); the answer is the returned rows.
 */
export async function bulkInsert(
  tx: Tx,
  table: SQLiteTable,
  rows: readonly Record<string, unknown>[],
  tail = '',
): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return []
  const columns = getTableColumns(table)
  const keys = Object.keys(rows[0]!)
  const names = keys.map((key) => {
    const column = columns[key]
    if (!column) throw new Error(`bulkInsert: ${getTableName(table)} has no column ${key}`)
    return quote(column.name)
  })
  const renamed = keys.some((key, i) => names[i] !== quote(key))
  const body = renamed
    ? rows.map((row) => Object.fromEntries(keys.map((k, i) => [columns[k]!.name, row[k]])))
    : rows
  const name = quote(getTableName(table))
  const list = names.join(', ')
  return pgExecute(
    tx,
    sql`${sql.raw(`insert into ${name} (${list}) select ${list} from json_populate_recordset(null::${name}, `)}${JSON.stringify(body)}${sql.raw(`::text::json) ${tail}`)}`,
  )
}
