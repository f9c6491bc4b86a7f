// PostgreSQL: how far the rollup worker may fold without the deployment-wide writer lock. Readings get
// their ids when inserted, not when committed, so while scoped writers run side by side a reading with
// a lower id can still commit after one with a higher id. Every writer holds the writer lock (shared or
// exclusive) from before its first insert until COMMIT, so once the writers holding it when the id
// sequence read N have all ended, every reading with id <= N that will ever exist is committed.
import { sql } from 'drizzle-orm'
import type { Database } from '../../db'
import { pgExecute, WRITER_LOCK } from '../../db/postgres'

interface Horizon {
  /** The highest id handed out when it was read. */
  id: number
  /** The writers (virtual transaction ids) that held the writer lock then. */
  writers: string[]
}

/** Per database: the last settled id, and a newer horizon waiting for its writers to end. */
const horizons = new WeakMap<Database, { settled: number; pending?: Horizon }>()

/** The highest reading id below which no reading can still appear (PostgreSQL only). */
export async function settledReadingId(db: Database): Promise<number> {
  // The id first, then the lock holders: a writer that took an id <= N held the lock before N was read.
  const [seq] = await pgExecute(
    db.read,
    sql`select coalesce(pg_sequence_last_value(pg_get_serial_sequence('readings', 'id')), 0) as id`,
  )
  const [locks] = await pgExecute(
    db.read,
    sql`select coalesce(array_agg(virtualtransaction), '{}') as writers from pg_locks
        where locktype = 'advisory' and granted and objsubid = 1 and pid <> pg_backend_pid()
          and database = (select oid from pg_database where datname = current_database())
          and (classid::bigint << 32 | objid::bigint) = ${WRITER_LOCK}`,
  )
  const now: Horizon = { id: Number(seq!.id), writers: locks!.writers as string[] }
  let known = horizons.get(db)
  if (!known) horizons.set(db, (known = { settled: 0 }))
  if (now.writers.length === 0) {
    known.settled = Math.max(known.settled, now.id)
    known.pending = undefined
    return known.settled
  }
  const pending = known.pending
  if (pending) {
    const [left] = await pgExecute(
      db.read,
      sql`select count(*)::int as n from pg_locks where virtualtransaction = any(${`{${pending.writers.join(',')}}`}::text[])`,
    )
    if (Number(left!.n) > 0) return known.settled
    known.settled = Math.max(known.settled, pending.id)
  }
  known.pending = now
  return known.settled
}
