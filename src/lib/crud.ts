// The create / read / update / delete steps every resource shares, each emitting its entity event.
import { count, eq, getTableColumns, getTableName, is, sql, SQL } from 'drizzle-orm'
import type { SQLQueryBindings } from 'bun:sqlite'
import type { SQLiteColumn, SQLiteTable } from 'drizzle-orm/sqlite-core'
import { isSqlite, sqliteClient, type Tx } from '../db'
import { bulkInsert, bulkUpdate } from '../db/bulk'
import { prepared, selectByIds } from '../db/prepared'
import type { EntityType } from '../realtime/channels'
import type { Emit } from '../realtime/emitter'
import type { EntityEventType } from '../realtime/envelope'
import { NotFoundError, UnknownReferenceError } from './errors'

type Table = SQLiteTable & { id: SQLiteColumn }

export interface Resource<Row, Dto> {
  table: Table
  /** Shown in messages: "Sensor 5 does not exist." */
  label: string
  entityType: EntityType
  toDto(row: Row): Dto
}

export interface Page<Dto> {
  items: Dto[]
  total: number
}

// drizzle's builders are typed per table; this module is the one place that works on any table.
type Loose = any

const action = (verb: string, entityType: EntityType) => `${verb}_${entityType}`

/** The row as the API shows it, emitted as `eventType` with the action `<verb>_<entity>`. */
function announce<Row, Dto extends { id: number }>(
  emit: Emit,
  r: Resource<Row, Dto>,
  row: Row,
  eventType: EntityEventType,
  verb: string,
): Dto {
  const dto = r.toDto(row)
  emit({
    entity_type: r.entityType,
    event_type: eventType,
    entity_id: dto.id,
    data: dto as Dto & Record<string, unknown>,
    action: action(verb, r.entityType),
  })
  return dto
}

export async function findRow<Row>(db: Tx, r: Resource<Row, unknown>, id: number): Promise<Row> {
  const [row] = await (db as Loose).select().from(r.table).where(eq(r.table.id, id)).limit(1)
  if (!row) throw new NotFoundError(r.label, id)
  return row as Row
}

/** The ids among these that are rows of `table`. */
export async function existingIds(tx: Tx, table: Table, ids: readonly number[]) {
  const rows: { id: number }[] = await selectByIds(
    tx,
    `exists:${getTableName(table)}`,
    [...new Set(ids)],
    (match) => (tx as Loose).select({ id: table.id }).from(table).where(match(table.id)),
  )
  return new Set(rows.map((row) => row.id))
}

/**
 * A 422 naming the field unless every id is a row of `r` (a reading of an unknown sensor): `field(i)`
 * names the i-th id's field (`[3].sensor_id` in a batch), `hint` says what to do about it.
 */
export async function requireRows(
  tx: Tx,
  r: Pick<Resource<unknown, unknown>, 'table' | 'label'>,
  ids: number[],
  field: (index: number) => string,
  hint: string,
) {
  const found = await existingIds(tx, r.table, ids)
  const missing = ids.findIndex((id) => !found.has(id))
  if (missing >= 0) throw new UnknownReferenceError(field(missing), r.label, ids[missing]!, hint)
}

export async function findOne<Row, Dto>(db: Tx, r: Resource<Row, Dto>, id: number): Promise<Dto> {
  return r.toDto(await findRow(db, r, id))
}

export async function findPage<Row, Dto>(
  db: Tx,
  r: Resource<Row, Dto>,
  where: SQL | undefined,
  orderBy: SQL[],
  limit = 100,
  offset = 0,
): Promise<Page<Dto>> {
  const rows: Row[] = await (db as Loose)
    .select()
    .from(r.table)
    .where(where)
    .orderBy(...orderBy)
    .limit(limit)
    .offset(offset)
  const [{ total }] = await (db as Loose).select({ total: count() }).from(r.table).where(where)
  return { items: rows.map(r.toDto), total }
}

export async function insertOne<Row, Dto extends { id: number }>(
  tx: Tx,
  emit: Emit,
  r: Resource<Row, Dto>,
  values: Record<string, unknown>,
  eventType: EntityEventType = 'created',
): Promise<Dto> {
  const row = preparable(tx, values)
    ? await sqliteInsert<Row>(tx, r.table, values)
    : (await (tx as Loose).insert(r.table).values(values).returning())[0]
  return announce(emit, r, row, eventType, 'create')
}

/**
 * A single-row write's columns as a prepared statement takes them: a placeholder per value, and NULL
 * written into the statement for a null (drizzle passes a placeholder's value through the column's
 * encoder, which stores null as the text 'null' in a JSON column). `key` names the statement.
 */
function shapeOf(values: Record<string, unknown>) {
  const key = Object.keys(values)
    .map((c) => (values[c] === null ? `${c}=null` : c))
    .join(',')
  const columns = () =>
    Object.fromEntries(
      Object.keys(values).map((c) => [c, values[c] === null ? null : sql.placeholder(c)]),
    )
  return { key, columns }
}

// Single-row INSERTs prepared once per connection, table and column set: for batches, running one
// prepared statement per row is cheaper than building multi-row statements.
const preparedInsert = (tx: Tx, table: Table, values: Record<string, unknown>): Loose => {
  const shape = shapeOf(values)
  return prepared(tx, `insert:${getTableName(table)}(${shape.key})`, () =>
    (tx as Loose).insert(table).values(shape.columns()).returning().prepare(),
  )
}

/** An UPDATE … RETURNING of this column set by id, prepared once per connection and column set. */
const preparedUpdate = (tx: Tx, table: Table, values: Record<string, unknown>): Loose => {
  const shape = shapeOf(values)
  return prepared(tx, `update:${getTableName(table)}(${shape.key})`, () =>
    (tx as Loose)
      .update(table)
      .set(shape.columns())
      .where(eq(table.id, sql.placeholder(ROW_ID)))
      .returning()
      .prepare(),
  )
}
/** The placeholder naming the row an update changes (no column is called this). */
const ROW_ID = '$row_id'

/**
 * A single-row INSERT of these columns run straight on bun:sqlite, each value turned into what the
 * column stores as drizzle would (JSON text, …): drizzle's placeholder filling cost more per row than
 * SQLite's insert itself.
 */
const rawInsert = (tx: Tx, table: Table, columns: string[]): ((row: Loose) => number) =>
  prepared(tx, `raw-insert:${getTableName(table)}(${columns.join(',')})`, () => {
    const all = getTableColumns(table) as Record<string, Loose>
    const mapped = columns.map((c) => all[c])
    const statement = sqliteClient(tx).prepare(
      `insert into "${getTableName(table)}" (${mapped.map((c) => `"${c.name}"`).join(', ')}) values (${mapped.map(() => '?').join(', ')})`,
    )
    const args: SQLQueryBindings[] = new Array(columns.length)
    return (row: Loose) => {
      for (let i = 0; i < columns.length; i++) {
        const value = row[columns[i]!]
        args[i] = value == null ? null : mapped[i].mapToDriverValue(value)
      }
      return Number(statement.run(...args).lastInsertRowid)
    }
  })

/**
 * One row on SQLite through a statement prepared once per column set. With every column but the id given,
 * the row is the values and its new id, without RETURNING (which costs SQLite as much again as the
 * insert); otherwise SQLite returns it, defaults filled in.
 */
function sqliteInsert<Row>(
  tx: Tx,
  table: Table,
  value: Record<string, unknown>,
): Row | Promise<Row> {
  const columns = Object.keys(value)
  const others = columnsButId(table)
  if (columns.length === others.size && columns.every((c) => others.has(c)))
    return { ...value, id: rawInsert(tx, table, columns)(value) } as Row
  return preparedInsert(tx, table, value).get(value) as Row
}

/**
 * True when a single-row write may go through a statement prepared once (SQLite, plain values): drizzle
 * builds and prepares a statement per call otherwise, about 0.1 ms warm and 0.3 ms cold per row, which
 * the detector pays for every anomaly it opens or updates.
 */
const preparable = (tx: Tx, values: Record<string, unknown>) => isSqlite(tx) && plain(values)

/** True when every value is one to bind: none undefined (drizzle leaves those out), none SQL. */
function plain(values: Record<string, unknown>) {
  for (const key in values) if (values[key] === undefined || is(values[key], SQL)) return false
  return true
}

const otherColumns = new WeakMap<Table, Set<string>>()

/** The table's columns but its id. */
function columnsButId(table: Table) {
  let columns = otherColumns.get(table)
  if (!columns)
    otherColumns.set(
      table,
      (columns = new Set(Object.keys(getTableColumns(table)).filter((key) => key !== 'id'))),
    )
  return columns
}

/** True when every value has exactly these keys. */
function sameKeys(values: Record<string, unknown>[], keys: Set<string>) {
  for (const value of values) {
    let n = 0
    for (const key in value) {
      if (!keys.has(key)) return false
      n += 1
    }
    if (n !== keys.size) return false
  }
  return true
}

/** Inserts many rows in the caller's transaction and emits one event per row. */
export async function insertMany<Row, Dto extends { id: number }>(
  tx: Tx,
  emit: Emit,
  r: Resource<Row, Dto>,
  values: Record<string, unknown>[],
  chunk = 500,
): Promise<Dto[]> {
  const rows: Row[] = []
  if (isSqlite(tx) && values.length > 1 && sameKeys(values, columnsButId(r.table))) {
    // A batch of whole rows: one statement looked up for all of them, no await per row.
    const insert = rawInsert(tx, r.table, Object.keys(values[0]!))
    for (const value of values) rows.push({ ...value, id: insert(value) } as Row)
  } else if (isSqlite(tx))
    for (const value of values) {
      const row = sqliteInsert<Row>(tx, r.table, value)
      rows.push(row instanceof Promise ? await row : row)
    }
  else if (values.length > 1 && sameKeys(values, columnsButId(r.table))) {
    // Every column given: the rows are known but for their ids (returned in insertion order).
    const ids = await bulkInsert(tx, r.table, values, 'returning id')
    values.forEach((value, i) => rows.push({ ...value, id: Number(ids[i]!.id) } as Row))
  } else
    for (let i = 0; i < values.length; i += chunk)
      rows.push(
        ...(await (tx as Loose)
          .insert(r.table)
          .values(values.slice(i, i + chunk))
          .returning()),
      )
  return rows.map((row) => announce(emit, r, row, 'created', 'create'))
}

export async function updateOne<Row, Dto extends { id: number }>(
  tx: Tx,
  emit: Emit,
  r: Resource<Row, Dto>,
  id: number,
  values: Record<string, unknown>,
  eventType: EntityEventType = 'updated',
): Promise<Dto> {
  const row = preparable(tx, values)
    ? await preparedUpdate(tx, r.table, values).get({ ...values, [ROW_ID]: id })
    : (await (tx as Loose).update(r.table).set(values).where(eq(r.table.id, id)).returning())[0]
  if (!row) throw new NotFoundError(r.label, id)
  return announce(emit, r, row, eventType, 'update')
}

/**
 * Several updates by id in the caller's transaction, each emitting its event in the order given: on
 * PostgreSQL one statement for all of them when they set the same columns (a round trip and a statement
 * built per row otherwise), on SQLite one prepared statement run per row.
 */
export async function updateMany<Row, Dto extends { id: number }>(
  tx: Tx,
  emit: Emit,
  r: Resource<Row, Dto>,
  updates: readonly { id: number; values: Record<string, unknown> }[],
): Promise<Dto[]> {
  const all = updates.map(({ values }) => values)
  const bulk =
    !isSqlite(tx) &&
    updates.length > 1 &&
    all.every(plain) &&
    sameKeys(all, new Set(Object.keys(all[0]!)))
  if (!bulk) {
    const out: Dto[] = []
    for (const { id, values } of updates) out.push(await updateOne(tx, emit, r, id, values))
    return out
  }
  const rows = await bulkUpdate(
    tx,
    r.table,
    updates.map(({ id, values }) => ({ ...values, id })),
  )
  return updates.map(({ id }) => {
    const row = rows.get(id)
    if (!row) throw new NotFoundError(r.label, id)
    return announce(emit, r, row as Row, 'updated', 'update')
  })
}

export async function deleteOne<Row, Dto extends { id: number }>(
  tx: Tx,
  emit: Emit,
  r: Resource<Row, Dto>,
  id: number,
): Promise<Dto> {
  const [row] = await (tx as Loose).delete(r.table).where(eq(r.table.id, id)).returning()
  if (!row) throw new NotFoundError(r.label, id)
  return announce(emit, r, row, 'deleted', 'delete')
}

/** Drops keys whose value is undefined, so a PATCH only touches the fields it names. */
export function defined<T extends Record<string, unknown>>(values: T): Partial<T> {
  return Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined)) as Partial<T>
}
