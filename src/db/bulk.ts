// PostgreSQL bulk writes: any number of rows in one statement with one parameter per column, each a
// column's values as text joined by a record separator (split by string_to_array, cast per row to the
// column's type). drizzle's multi-row VALUES binds one parameter per value and builds the statement in
// JavaScript; one JSON array of rows (json_populate_recordset) made PostgreSQL parse every value out of
// the document, and a JSON column's value twice: 500 detector states of 1.7 KB took 44 ms as JSON and
// 22 ms as lists, 1,000 readings 26 ms and 11 ms. Few rows, or text that could hold the separators, go
// as the JSON array.
import { getTableColumns, getTableName, is, sql, type SQL } from 'drizzle-orm'
import { PgTable } from 'drizzle-orm/pg-core'
import type { SQLiteTable } from 'drizzle-orm/sqlite-core'
import type { Tx } from '.'
import * as pg from './pg-schema'
import { pgExecute } from './postgres'

const quote = (name: string) => `"${name.replace(/"/g, '""')}"`

/** Between two values of a list (ASCII record separator), and a value that stands for NULL (unit separator). */
const RS = '\x1e'
const NULL_TEXT = '\x1f'

/**
 * Fewer rows go as the JSON array. Session 7 measured single POSTs from 64 senders (groups of about 16
 * readings, 80 states) about 8 % slower as lists, so the line was at 100 rows; session 9, with detector
 * states that have learned a few days (2.3 KB), found lists cheaper from 80 states on (upsert alone
 * 3.0-3.5 ms against 3.8-5.1) and PostgreSQL's CPU per single POST lower with lists in groups of 16-32.
 */
const LIST_MIN_ROWS = 20

/** Column name → PostgreSQL type, per table name, from the PostgreSQL schema. */
const pgTypes = new Map<string, Map<string, string>>()
for (const table of Object.values(pg)) {
  if (!is(table, PgTable)) continue
  const types = new Map<string, string>()
  for (const column of Object.values(getTableColumns(table)))
    types.set(column.name, column.getSQLType())
  pgTypes.set(getTableName(table), types)
}

const isJsonType = (type: string) => type === 'json' || type === 'jsonb'

/**
 * One column's values as one text: each value after a separator (the leading one keeps a single empty
 * string from splitting into no value at all), JSON columns as JSON text, NULL as NULL_TEXT. Undefined
 * when a text value holds a separator (JSON text never does: it escapes control characters).
 */
function textList(values: readonly unknown[], json: boolean): string | undefined {
  const parts: string[] = ['']
  for (const value of values) {
    if (value === null || value === undefined) parts.push(NULL_TEXT)
    else if (json) parts.push(JSON.stringify(value))
    else if (typeof value === 'string') {
      // string_to_array takes a whole field equal to NULL_TEXT as NULL, not one that holds it.
      if (value === NULL_TEXT || value.includes(RS)) return undefined
      parts.push(value)
    } else if (typeof value === 'object') parts.push(JSON.stringify(value))
    else parts.push(String(value))
  }
  return parts.join(RS)
}

/**
 * `select` of the rows as column lists, one output row per row, each column's value (`of`) cast to its
 * type; the columns come out as c0, c1, … in `columns`' order. Undefined for fewer than LIST_MIN_ROWS
 * rows (checked before any list is built) or when a list cannot be made (see textList): the caller
 * sends its JSON array then.
 */
export function selectLists<T>(
  rows: readonly T[],
  columns: readonly { type: string; of: (row: T, index: number) => unknown }[],
): SQL | undefined {
  if (rows.length < LIST_MIN_ROWS) return undefined
  const texts: string[] = []
  for (const { type, of } of columns) {
    const text = textList(rows.map(of), isJsonType(type))
    if (text === undefined) return undefined
    texts.push(text)
  }
  const arrays = sql.join(
    texts.map((text) => sql`(string_to_array(${text}::text, chr(30), chr(31)))[2:]`),
    sql`, `,
  )
  const casts = columns.map((column, i) => `u.c${i}::${column.type} as c${i}`).join(', ')
  const names = columns.map((_, i) => `c${i}`).join(', ')
  return sql`${sql.raw(`select ${casts} from unnest(`)}${arrays}${sql.raw(`) as u(${names})`)}`
}

/**
 * Inserts `rows` (each with the same keys, the table's column keys; JSON columns as values) in one
 * statement. `tail` follows the SELECT (ON CONFLICT …, RETURNING …); the answer is the returned rows,
 * in the order of `rows` for RETURNING.
 */
export async function bulkInsert(
  tx: Tx,
  table: SQLiteTable,
  rows: readonly Record<string, unknown>[],
  tail: string | SQL = '',
): Promise<Record<string, unknown>[]> {
  if (rows.length === 0) return []
  const tableName = getTableName(table)
  const keys = Object.keys(rows[0]!)
  const names = columnNames(table, keys, 'bulkInsert')
  const name = quote(tableName)
  const list = names.map(quote).join(', ')
  const types = pgTypes.get(tableName)
  const after = typeof tail === 'string' ? sql.raw(tail) : tail
  const select =
    types &&
    names.every((n) => types.has(n)) &&
    selectLists(
      rows,
      keys.map((key, i) => ({ type: types.get(names[i]!)!, of: (row) => row[key] })),
    )
  if (select)
    return pgExecute(tx, sql`${sql.raw(`insert into ${name} (${list}) `)}${select} ${after}`)
  return pgExecute(
    tx,
    sql`${sql.raw(`insert into ${name} (${list}) select ${list} from json_populate_recordset(null::${name}, `)}${records(rows, keys, names)}${sql.raw(`::text::json)`)} ${after}`,
  )
}

/** The column names of these keys of `table` (a key that is no column is a bug in the caller). */
function columnNames(table: SQLiteTable, keys: readonly string[], caller: string) {
  const columns = getTableColumns(table)
  return keys.map((key) => {
    const column = columns[key]
    if (!column) throw new Error(`${caller}: ${getTableName(table)} has no column ${key}`)
    return column.name
  })
}

/** The rows as the JSON array json_populate_recordset reads: each keyed by column name. */
function records(rows: readonly Record<string, unknown>[], keys: string[], names: string[]) {
  const renamed = keys.some((key, i) => names[i] !== key)
  const body = renamed
    ? rows.map((row) => Object.fromEntries(keys.map((k, i) => [names[i]!, row[k]])))
    : rows
  return JSON.stringify(body)
}

/**
 * Updates rows by id in one statement: each row holds `id` and the same other keys, the columns it
 * sets (JSON columns as values). Answers the updated rows, read back as drizzle reads them, by id.
 */
export async function bulkUpdate(
  tx: Tx,
  table: SQLiteTable,
  rows: readonly Record<string, unknown>[],
): Promise<Map<number, Record<string, unknown>>> {
  const updated = new Map<number, Record<string, unknown>>()
  if (rows.length === 0) return updated
  const columns = getTableColumns(table)
  const name = quote(getTableName(table))
  const keys = Object.keys(rows[0]!)
  const names = columnNames(table, keys, 'bulkUpdate')
  const set = names
    .filter((column) => column !== 'id')
    .map((column) => `${quote(column)} = u.${quote(column)}`)
    .join(', ')
  const answered = await pgExecute(
    tx,
    sql`${sql.raw(`update ${name} as t set ${set} from json_populate_recordset(null::${name}, `)}${records(rows, keys, names)}${sql.raw(`::text::json) as u where t."id" = u."id" returning t.*`)}`,
  )
  for (const raw of answered) {
    const row: Record<string, unknown> = {}
    for (const [key, column] of Object.entries(columns)) {
      const value = raw[column.name]
      row[key] = value === null || value === undefined ? null : column.mapFromDriverValue(value)
    }
    updated.set(row.id as number, row)
  }
  return updated
}
