// PostgreSQL through postgres.js: a connection pool, migrations under an advisory lock, retried transactions.
import { resolve } from 'node:path'
import { sql } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import type { Database, Tx } from '.'
import { dbErrorCode } from './errors'
import { Mutex } from './mutex'
import * as schema from './schema'

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle/postgres')
/** Any fixed numbers: every instance takes the first while it migrates, the second in each write. */
const MIGRATION_LOCK = 7_143_105_342
const WRITER_LOCK = 7_143_105_343
/** Serialization failures and deadlocks: the transaction did nothing and can simply run again. */
const RETRYABLE = new Set(['40001', '40P01'])
const ATTEMPTS = 3

export async function openPostgres(url: string): Promise<Database> {
  const client = postgres(url, {
    max: 10,
    connect_timeout: 5,
    idle_timeout: 60,
    onnotice: () => {},
    // Queries are built from the one schema in schema.ts, which reads integers and JSON the way SQLite
    // hands them over: bigint as a JS number (ids, seqs and ms timestamps stay below 2^53) and JSON as text.
    types: {
      bigint: { to: 20, from: [20], serialize: String, parse: Number },
      jsonText: {
        to: 3802,
        from: [114, 3802],
        serialize: (x: string) => x,
        parse: (x: string) => x,
      },
    },
  })
  const db = drizzle({ client, schema }) as unknown as Tx

  try {
    const lock = await client.reserve()
    try {
      await lock`select pg_advisory_lock(${MIGRATION_LOCK})`
      await migrate(db as never, { migrationsFolder: MIGRATIONS })
    } finally {
      await lock`select pg_advisory_unlock(${MIGRATION_LOCK})`.catch(() => undefined)
      lock.release()
    }
  } catch (error) {
    await client.end({ timeout: 1 })
    throw error
  }

  type PgTx = Tx & { execute(query: ReturnType<typeof sql>): Promise<unknown> }
  const pg = db as unknown as {
    transaction<T>(
      fn: (tx: PgTx) => Promise<T>,
      config?: { isolationLevel?: 'repeatable read'; accessMode?: 'read only' },
    ): Promise<T>
  }
  /**
   * One writer at a time, as with SQLite's single writer: in this process a FIFO queue (writes commit
   * in the order they were asked for, and afterCommit runs before the next one starts), across the
   * deployment an advisory lock every instance takes in each write. Services read, decide and write in
   * one transaction (detector state, counters), which is only safe when writes are serialized.
   * Readers never wait. The lock goes with COMMIT or ROLLBACK.
   */
  const writers = new Mutex()
  const serialized = <T>(fn: (tx: Tx) => Promise<T>) =>
    pg.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${WRITER_LOCK})`)
      return fn(tx)
    })
  return {
    dialect: 'postgres',
    read: db,
    // Writers commit one at a time, in seq order: a repeatable-read view sees a prefix of them.
    snapshot: (fn) =>
      pg.transaction(fn, { isolationLevel: 'repeatable read', accessMode: 'read only' }),
    transaction: <T>(fn: (tx: Tx) => Promise<T>, afterCommit?: (result: T) => void) =>
      writers.run(async () => {
        for (let attempt = 1; ; attempt++) {
          let result: T
          try {
            result = await serialized(fn)
          } catch (error) {
            if (attempt < ATTEMPTS && RETRYABLE.has(dbErrorCode(error) ?? '')) continue
            throw error
          }
          afterCommit?.(result)
          return result
        }
      }),
    ping: async () => {
      await client`select 1`
    },
    close: () => client.end({ timeout: 5 }),
  }
}
