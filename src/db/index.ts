// Opens the database named by DATABASE_URL, applies the committed migrations and serializes writes.
import { Database as SQLite } from 'bun:sqlite'
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { drizzle, type BunSQLiteDatabase } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import type { DatabaseConfig } from '../config'
import { ConfigError } from '../config'
import * as schema from './schema'

export { schema }
export type Tx = BunSQLiteDatabase<typeof schema>

export interface Database {
  readonly dialect: 'sqlite'
  /** Committed data only; never sees a write that is still in flight. */
  readonly read: Tx
  /**
   * Runs fn in one write transaction. Writers are serialized, so the event sequence is handed out
   * in commit order; afterCommit runs right after COMMIT, before the next writer starts.
   */
  transaction<T>(fn: (tx: Tx) => Promise<T>, afterCommit?: (result: T) => void): Promise<T>
  ping(): Promise<void>
  close(): void
}

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle/sqlite')

function openSqlite(path: string): SQLite {
  const memory = path === ':memory:'
  if (!memory) mkdirSync(dirname(resolve(path)), { recursive: true })
  const db = new SQLite(memory ? ':memory:' : path, { create: true, strict: true })
  db.run('PRAGMA busy_timeout = 5000')
  if (!memory) db.run('PRAGMA journal_mode = WAL')
  // NORMAL under WAL loses nothing on a process crash (kill -9), only on a power cut.
  db.run('PRAGMA synchronous = NORMAL')
  db.run('PRAGMA foreign_keys = ON')
  return db
}

/** A FIFO lock: one write transaction at a time on the single SQLite writer connection. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve()
  run<T>(fn: () => Promise<T>): Promise<T> {
    const result = this.tail.then(fn)
    this.tail = result.catch(() => undefined)
    return result
  }
}

export function openDatabase(config: DatabaseConfig): Database {
  if (config.kind !== 'sqlite')
    throw new ConfigError(
      `Invalid DATABASE_URL: ${config.kind} is not supported by this build; use sqlite:<path>.`,
    )
  const writerConn = openSqlite(config.path)
  const writer = drizzle({ client: writerConn, schema })
  migrate(writer, { migrationsFolder: MIGRATIONS })
  const memory = config.path === ':memory:'
  const readerConn = memory ? writerConn : openSqlite(config.path)
  const reader = memory ? writer : drizzle({ client: readerConn, schema })
  const lock = new Mutex()

  return {
    dialect: 'sqlite',
    read: reader,
    transaction: (fn, afterCommit) =>
      lock.run(async () => {
        writerConn.run('BEGIN IMMEDIATE')
        let result
        try {
          result = await fn(writer)
          writerConn.run('COMMIT')
        } catch (error) {
          if (writerConn.inTransaction) writerConn.run('ROLLBACK')
          throw error
        }
        afterCommit?.(result)
        return result
      }),
    ping: async () => {
      readerConn.query('SELECT 1').get()
    },
    close: () => {
      if (!memory) readerConn.close()
      writerConn.close()
    },
  }
}
