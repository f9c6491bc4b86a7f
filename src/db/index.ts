// Opens the database named by DATABASE_URL (SQLite or PostgreSQL: the one place the dialect is chosen)
// and applies its committed migrations.
import { Database as SQLite } from 'bun:sqlite'
import { mkdirSync } from 'node:fs'
import { dirname, resolve } from 'node:path'
import { drizzle, type BunSQLiteDatabase } from 'drizzle-orm/bun-sqlite'
import { migrate } from 'drizzle-orm/bun-sqlite/migrator'
import type { DatabaseConfig } from '../config'
import type { Logger } from '../lib/logger'
import { withLaterWrites } from './later'
import { Mutex } from './mutex'
import { openPostgres } from './postgres'
import * as schema from './schema'

export { schema }
export { later } from './later'
/**
 * What services build queries on. Queries use the tables of schema.ts on both databases and only
 * `await` drizzle's builders (no .get()/.all()/.run()), which PostgreSQL's builders share.
 */
export type Tx = BunSQLiteDatabase<typeof schema>

export interface Database {
  readonly dialect: 'sqlite' | 'postgres'
  /** Committed data only; never sees a write that is still in flight. */
  readonly read: Tx
  /**
   * Runs fn in one write transaction; afterCommit runs right after COMMIT. Write transactions run one
   * at a time (SQLite: its single writer; PostgreSQL: an advisory lock shared by every instance), so
   * a service may read, decide and write safely, and the event seq (bumped in the event_meta row) is
   * handed out gap-free and in commit order. With a `scope`, PostgreSQL runs the write beside other
   * scoped writes whose keys it does not share (see WriteScope); seqs stay gap-free and in commit order.
   */
  transaction<T>(
    fn: (tx: Tx) => Promise<T>,
    afterCommit?: (result: T) => void,
    scope?: WriteScope,
  ): Promise<T>
  /**
   * Runs reads that all see one committed state of the database (the same commits, nothing in
   * flight), without waiting for writers: what a WebSocket snapshot and its seq are read in.
   */
  snapshot<T>(fn: (tx: Tx) => Promise<T>): Promise<T>
  ping(): Promise<void>
  close(): Promise<void>
}

/**
 * A write that reads, decides and writes only rows owned by these keys (sensor ids: their readings,
 * latest values, detector states, anomalies), plus the event log. On PostgreSQL such writes run side
 * by side (across instances too) unless their keys meet; every other write still runs alone. SQLite
 * has one writer either way.
 */
export interface WriteScope {
  keys: readonly number[]
}

const MIGRATIONS = resolve(import.meta.dir, '../../drizzle/sqlite')

function sqliteConnection(path: string): SQLite {
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

const sqliteHandles = new WeakSet<Tx>()
/** Undo steps registered by the write transaction in progress (SQLite), run if it rolls back. */
const rollbackSteps = new WeakMap<Tx, (() => void)[]>()

/**
 * Runs `undo` if the write transaction in progress on `tx` (SQLite) rolls back: for state kept in memory
 * beside the rows (the detector's). Forgotten once it commits.
 */
export function onRollback(tx: Tx, undo: () => void) {
  let steps = rollbackSteps.get(tx)
  if (!steps) rollbackSteps.set(tx, (steps = []))
  steps.push(undo)
}

/**
 * True for a handle on SQLite. Hot paths there run prepared statements row by row (cheaper than
 * building statements in process); on PostgreSQL every statement is a round trip, so they send few.
 */
export const isSqlite = (tx: Tx) => sqliteHandles.has(tx)

/** The bun:sqlite connection under an SQLite handle, for statements run straight on it. */
export const sqliteClient = (tx: Tx) => (tx as unknown as { $client: SQLite }).$client

export async function openDatabase(config: DatabaseConfig, log?: Logger): Promise<Database> {
  if (config.kind === 'postgres') return openPostgres(config.url, log)
  return openSqlite(config.path)
}

/** Pages of WAL after which the writer checkpoints by itself: only if the checkpoint thread fell behind. */
const WRITER_CHECKPOINT_PAGES = 16_384

/** Starts the thread that checkpoints the WAL (src/db/checkpointer.ts); stop() waits for its last one. */
async function startCheckpointer(path: string) {
  const worker = new Worker(new URL('./checkpointer.ts', import.meta.url))
  const said = (what: string) =>
    new Promise<void>((resolve) => {
      const listener = (event: MessageEvent) => {
        if (event.data !== what) return
        worker.removeEventListener('message', listener)
        resolve()
      }
      worker.addEventListener('message', listener)
    })
  const ready = said('ready')
  worker.postMessage({ path: resolve(path) })
  await ready
  // A server that stops without close() must not be held open by this thread.
  ;(worker as unknown as { unref(): void }).unref()
  return {
    async stop() {
      const stopped = said('stopped')
      worker.postMessage('stop')
      await Promise.race([stopped, Bun.sleep(2000)])
      worker.terminate()
    },
  }
}

async function openSqlite(path: string): Promise<Database> {
  const writerConn = sqliteConnection(path)
  const writer = drizzle({ client: writerConn, schema })
  migrate(writer, { migrationsFolder: MIGRATIONS })
  const memory = path === ':memory:'
  if (!memory) writerConn.run(`PRAGMA wal_autocheckpoint = ${WRITER_CHECKPOINT_PAGES}`)
  // 64 MB of pages for the writer (SQLite's default is 2 MB): on a large database the indexes that
  // writes land in stay in memory (a 50,000-row import into 1 M readings of 1,000 sensors: 13 k → 32 k rows/s).
  writerConn.run('PRAGMA cache_size = -65536')
  const checkpointer = memory ? undefined : await startCheckpointer(path)
  const readerConn = memory ? writerConn : sqliteConnection(path)
  const reader = memory ? writer : drizzle({ client: readerConn, schema })
  sqliteHandles.add(writer)
  sqliteHandles.add(reader)
  const lock = new Mutex()
  // One read transaction at a time on the reader connection (SQLite has no nested BEGIN); other reads
  // that run on it meanwhile see that same committed state, which is what they would see anyway.
  const snapshots = new Mutex()

  return {
    dialect: 'sqlite',
    read: reader,
    snapshot: (fn) =>
      memory
        ? lock.run(() => fn(writer))
        : snapshots.run(async () => {
            readerConn.run('BEGIN')
            try {
              return await fn(reader)
            } finally {
              readerConn.run('COMMIT')
            }
          }),
    transaction: (fn, afterCommit) =>
      lock.run(async () => {
        writerConn.run('BEGIN IMMEDIATE')
        let result
        try {
          result = await withLaterWrites(writer, fn)
          writerConn.run('COMMIT')
        } catch (error) {
          if (writerConn.inTransaction) writerConn.run('ROLLBACK')
          for (const undo of rollbackSteps.get(writer)?.reverse() ?? []) undo()
          throw error
        } finally {
          rollbackSteps.delete(writer)
        }
        afterCommit?.(result)
        return result
      }),
    ping: async () => {
      readerConn.query('SELECT 1').get()
    },
    close: async () => {
      await checkpointer?.stop()
      if (!memory) readerConn.close()
      writerConn.close()
    },
  }
}
