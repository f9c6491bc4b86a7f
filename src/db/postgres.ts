// PostgreSQL through postgres.js: a connection pool behind a circuit breaker, migrations under an advisory
// lock, retried transactions.
import { resolve } from 'node:path'
import { sql, type SQL } from 'drizzle-orm'
import { drizzle } from 'drizzle-orm/postgres-js'
import { migrate } from 'drizzle-orm/postgres-js/migrator'
import postgres from 'postgres'
import type { Logger } from '../lib/logger'
import type { Database, Tx, WriteScope } from '.'
import { Availability } from './availability'
import { withLaterWrites } from './later'
import { DatabaseUnavailableError, dbErrorCode } from './errors'
import { Mutex, Semaphore } from './mutex'
import * as schema from './schema'

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle/postgres')
/** Any fixed numbers: every instance takes the first while it migrates, the second in each write. */
const MIGRATION_LOCK = 7_143_105_342
export const WRITER_LOCK = 7_143_105_343
/** Raw SQL on a PostgreSQL handle (drizzle's postgres-js `execute`): the rows it answers. */
export const pgExecute = (tx: Tx | Database['read'], query: SQL) =>
  (tx as unknown as { execute(query: SQL): Promise<Record<string, unknown>[]> }).execute(query)

/** The int4 namespace of the per-key locks of scoped writes (pg_advisory_xact_lock(space, key)). */
const KEY_LOCKS = 714_310_534
/** Scoped writes this instance runs at once (the pool has 10 connections; reads keep the rest). */
const SCOPED_PARALLEL = 4
/** Serialization failures and deadlocks: the transaction did nothing and can simply run again. */
const RETRYABLE = new Set(['40001', '40P01'])
const ATTEMPTS = 3
/** /health's query: past this the database counts as not answering. */
const PING_TIMEOUT_MS = 800

export async function openPostgres(url: string, log?: Logger): Promise<Database> {
  const client = postgres(url, {
    max: 10,
    connect_timeout: 2,
    idle_timeout: 60,
    // postgres.js waits 0.5-1 × min(3^failures / 100, 20) s before reconnecting a connection that
    // failed, counted over the whole pool: after an outage of a few seconds, queries sat 10-20 s behind
    // that wait although PostgreSQL was back. The breaker below keeps queries off a dead database, so
    // reconnecting at once is cheap.
    backoff: () => 0.05 + Math.random() * 0.05,
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
  const availability = new Availability(
    async () => {
      await client`select 1`
    },
    {
      down: (error) =>
        log?.warn('PostgreSQL unreachable: answering 503 until it is back', {
          error: String(error),
        }),
      up: (ms) => log?.info('PostgreSQL reachable again', { down_ms: ms }),
    },
  )
  const db = drizzle({ client: guarded(client, availability), schema }) as unknown as Tx

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
   *
   * Scoped writes (readings: see WriteScope) take that lock shared, so they run beside each other but
   * never beside a plain write, and one exclusive lock per key, in key order (no deadlock between
   * them), so two writes of one sensor still run one after the other. Seqs stay gap-free and in commit
   * order without the single lock: the event_meta row the seq is bumped in stays locked until COMMIT,
   * and appendEvents bumps it last, so the next writer gets its seqs only once this one committed.
   */
  const writers = new Mutex()
  const scopedWriters = new Semaphore(SCOPED_PARALLEL)
  const serialized = <T>(fn: (tx: Tx) => Promise<T>) =>
    pg.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(${WRITER_LOCK})`)
      return withLaterWrites(tx, fn)
    })
  const scoped = <T>(fn: (tx: Tx) => Promise<T>, keys: readonly number[]) => {
    // int4 keys: a larger id shares its lock with another, which only makes them wait for each other.
    const sorted = [...new Set(keys.map((k) => k % 2_147_483_647))].sort((a, b) => a - b)
    return pg.transaction(async (tx) => {
      // Not awaited before fn's first query: postgres.js pipelines a transaction's queries, and
      // PostgreSQL runs them in order, so that query runs once the locks are held, one round trip on.
      // Their then() is called here, not a job later through Promise.all: postgres.js sends queries in
      // the order they are started, and a query of fn must never start first.
      const locked = Promise.all([
        tx.execute(sql`select pg_advisory_xact_lock_shared(${WRITER_LOCK})`).then(() => undefined),
        tx
          .execute(
            sql`select pg_advisory_xact_lock(${KEY_LOCKS}::int, k) from unnest(${`{${sorted.join(',')}}`}::int[]) as k`,
          )
          .then(() => undefined),
      ])
      const result = await Promise.all([locked, withLaterWrites(tx, fn)])
      return result[1]
    })
  }
  const retried = async <T>(run: () => Promise<T>, afterCommit?: (result: T) => void) => {
    for (let attempt = 1; ; attempt++) {
      let result: T
      try {
        result = await run()
      } catch (error) {
        if (attempt < ATTEMPTS && RETRYABLE.has(dbErrorCode(error) ?? '')) continue
        throw error
      }
      afterCommit?.(result)
      return result
    }
  }
  return {
    dialect: 'postgres',
    read: db,
    // Writers commit in seq order: a repeatable-read view sees a prefix of them.
    snapshot: (fn) =>
      pg.transaction(fn, { isolationLevel: 'repeatable read', accessMode: 'read only' }),
    transaction: <T>(
      fn: (tx: Tx) => Promise<T>,
      afterCommit?: (result: T) => void,
      scope?: WriteScope,
    ) =>
      scope
        ? scopedWriters.run(() => retried(() => scoped(fn, scope.keys), afterCommit))
        : writers.run(() => retried(() => serialized(fn), afterCommit)),
    ping: async () => {
      availability.check()
      let timer: Timer | undefined
      const late = new Promise<never>((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`no answer to select 1 within ${PING_TIMEOUT_MS} ms`)),
          PING_TIMEOUT_MS,
        )
      })
      try {
        const answer = client`select 1`.catch((error: unknown) => {
          availability.report(error)
          throw error
        })
        await Promise.race([answer, late])
      } finally {
        clearTimeout(timer)
      }
    },
    close: () => {
      availability.stop()
      return client.end({ timeout: 5 })
    },
  }
}

/**
 * Statements with at most this many parameters are prepared once per connection. drizzle runs every
 * query unprepared, and postgres.js describes an unprepared statement with parameters before binding
 * it: two round trips each (a single POST's transaction has 13 statements). Queries over long id
 * lists have a text per length, so they stay unprepared and each connection keeps a bounded set.
 */
const PREPARE_MAX_PARAMETERS = 32

const prepareOptions = (
  params: Parameters<postgres.Sql['unsafe']>[1],
  options: Parameters<postgres.Sql['unsafe']>[2],
) => ({ ...options, prepare: (params?.length ?? 0) <= PREPARE_MAX_PARAMETERS })

/** A transaction's handle whose queries are prepared as prepareOptions says. */
function preparing(sql: postgres.TransactionSql): postgres.TransactionSql {
  return new Proxy(sql, {
    get(target, prop, receiver) {
      if (prop === 'unsafe')
        return (...[query, params, options]: Parameters<postgres.Sql['unsafe']>) =>
          target.unsafe(query, params, prepareOptions(params, options))
      return Reflect.get(target, prop, receiver)
    },
  })
}

/**
 * The pool as drizzle sees it: every query and transaction first asks the breaker (so while the
 * database is down they fail at once with DatabaseUnavailableError, answered 503), and reports its
 * failure to it. drizzle reaches PostgreSQL only through `unsafe` and `begin`.
 */
function guarded(client: postgres.Sql, availability: Availability): postgres.Sql {
  return new Proxy(client, {
    get(target, prop, receiver) {
      if (prop === 'unsafe')
        return (...[text, params, options]: Parameters<postgres.Sql['unsafe']>) => {
          availability.check()
          const query = target.unsafe(text, params, prepareOptions(params, options))
          // Observes the outcome only; drizzle awaits the query itself (postgres.js sends it a tick later).
          query.then(undefined, availability.report)
          return query
        }
      if (prop === 'begin')
        return (...args: unknown[]) => {
          availability.check()
          // A transaction still waiting for a connection when the breaker opens is refused then: its
          // connect may hang until connect_timeout (PostgreSQL shutting down). If the connection comes
          // later, the transaction finds itself abandoned and rolls back before doing anything.
          let abandoned = false
          let refuse: (error: Error) => void = () => {}
          const refused = new Promise<never>((_, reject) => (refuse = reject))
          const forget = availability.onDown(() => {
            abandoned = true
            refuse(new DatabaseUnavailableError())
          })
          // The transaction's own handle prepares as the pool's does.
          const fn = args.at(-1) as (sql: postgres.TransactionSql) => unknown
          args[args.length - 1] = (sql: postgres.TransactionSql) => {
            forget()
            if (abandoned) throw new DatabaseUnavailableError()
            return fn(preparing(sql))
          }
          const run = (target.begin as (...a: unknown[]) => Promise<unknown>)(...args).catch(
            (error: unknown) => {
              availability.report(error)
              throw error
            },
          )
          return Promise.race([run, refused]).finally(forget)
        }
      return Reflect.get(target, prop, receiver)
    },
  })
}
