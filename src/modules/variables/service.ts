// Variable use cases: the registry of measurement names (filled in by ingest on first appearance),
// listed with units, and described by PUT.
import { asc, eq, sql } from 'drizzle-orm'
import type { Services } from '../../context'
import { isSqlite, type Tx } from '../../db'
import { prepared } from '../../db/prepared'
import { variables } from '../../db/schema'
import { iso } from '../../lib/time'
import type { Variable, VariablePut } from './model'

type Row = typeof variables.$inferSelect

const toDto = (row: Row): Variable => ({
  name: row.name,
  unit: row.unit,
  description: row.description,
  created_at: iso(row.created_at),
  updated_at: iso(row.updated_at),
})

/**
 * Names this instance knows are registered. Added only after the transaction that registered them
 * committed (a rolled-back batch must not leave a name here that the table does not have).
 */
const known = new WeakMap<object, Set<string>>()
const knownOf = (services: Services) => {
  let set = known.get(services.db)
  if (!set) known.set(services.db, (set = new Set()))
  return set
}

/** The names among these that this instance has not seen registered yet. */
export function unregistered(services: Services, names: Iterable<string>): string[] {
  const set = knownOf(services)
  const out: string[] = []
  for (const name of names) if (!set.has(name)) out.push(name)
  return out
}

/** Registers names in the caller's transaction (a name another writer registered first is kept). */
export async function registerVariables(tx: Tx, names: string[], now: number) {
  if (names.length === 0) return
  const rows = names.map((name) => ({ name, created_at: now, updated_at: now }))
  if (isSqlite(tx)) {
    const insert = prepared(tx, 'variables-register', () =>
      tx
        .insert(variables)
        .values({
          name: sql.placeholder('name'),
          created_at: sql.placeholder('created_at'),
          updated_at: sql.placeholder('updated_at'),
        })
        .onConflictDoNothing()
        .prepare(),
    )
    for (const row of rows) await insert.run(row)
  } else await tx.insert(variables).values(rows).onConflictDoNothing()
}

/** Called once the transaction that registered `names` committed. */
export function rememberVariables(services: Services, names: Iterable<string>) {
  const set = knownOf(services)
  for (const name of names) set.add(name)
}

export const listVariables = async ({ db }: Services) =>
  (await db.read.select().from(variables).orderBy(asc(variables.name))).map(toDto)

/**
 * Sets a variable's unit and description (a name not seen yet is registered: 201); announced as a
 * system_event on general so open pages can relabel their charts.
 */
export async function putVariable(services: Services, name: string, input: VariablePut) {
  const { emitter } = services
  const fields = { unit: input.unit ?? null, description: input.description ?? null }
  const { dto, created } = await emitter.transact(async (tx) => {
    const now = Date.now()
    const [current] = await tx.select().from(variables).where(eq(variables.name, name))
    const [row] = current
      ? await tx
          .update(variables)
          .set({ ...fields, updated_at: now })
          .where(eq(variables.name, name))
          .returning()
      : await tx
          .insert(variables)
          .values({ name, ...fields, created_at: now, updated_at: now })
          .returning()
    return { dto: toDto(row!), created: !current }
  })
  rememberVariables(services, [name])
  await emitter.system({
    level: 'info',
    message: `Variable ${name} ${created ? 'registrada' : 'actualizada'}`,
    data: { module: 'variables', variable: dto },
  })
  return { variable: dto, created }
}
