// The ingest references, one process per run, steered over IPC by bench/run.ts: the storage itself,
// writing the rows Vigía writes for the same fleet readings. bun:sqlite (prepared statements, WAL,
// synchronous=NORMAL, one transaction per batch, the event frame built per row) or postgres.js (one
// `unnest` insert per table and batch, the same number of batches in flight as Vigía's senders).
import { Database } from 'bun:sqlite'
import postgres, { type Sql } from 'postgres'
import { deal, Lane, VARIABLES, type VariableCount } from './lib/fleet'
import {
  migratePostgres,
  migrateSqlite,
  postgresLayout,
  sqliteLayout,
  type FrameTemplate,
} from './lib/layout'
import { now } from './lib/protocol'
import { PgWriter, SqliteWriter } from './lib/writers'

export type ReferenceCommand =
  | {
      t: 'setup'
      engine: 'sqlite' | 'postgres'
      /** SQLite file path or PostgreSQL URL of a fresh, empty database. */
      target: string
      sensors: number
      vars: VariableCount
      seed: number
      startMs: number
      template: FrameTemplate
      /** Lanes: as many as Vigía's senders, each with its own sensors. */
      lanes: number
    }
  | { t: 'run'; batch: number; durationMs: number }
  | { t: 'close' }

export interface ReferenceReply {
  rows: number
  batches: number
  /** Wall time of the run, s. */
  seconds: number
  /** Time spent inside the writer (SQLite: the transactions; PostgreSQL: same as seconds), s. */
  busy: number
  perSecond: number
}

let writer: SqliteWriter | PgWriter | undefined
let sqlite: Database | undefined
let pg: Sql | undefined
let lanes: Lane[] = []

async function setup(cmd: Extract<ReferenceCommand, { t: 'setup' }>) {
  const options = { events: cmd.template }
  if (cmd.engine === 'sqlite') {
    sqlite = new Database(cmd.target, { create: true })
    SqliteWriter.pragmas(sqlite)
    await migrateSqlite(sqlite)
    const w = new SqliteWriter(sqlite, sqliteLayout(sqlite), options)
    w.createSensors(cmd.sensors)
    w.ensureLookups(VARIABLES.slice(0, cmd.vars))
    writer = w
  } else {
    pg = postgres(cmd.target, { max: Math.max(1, cmd.lanes), onnotice: () => {} })
    await migratePostgres(pg)
    const w = new PgWriter(pg, await postgresLayout(pg), options)
    await w.createSensors(cmd.sensors)
    await w.ensureLookups(VARIABLES.slice(0, cmd.vars))
    writer = w
  }
  const ids = Array.from({ length: cmd.sensors }, (_, i) => i + 1)
  lanes = deal(ids, cmd.lanes).map((s) => new Lane(s, cmd.seed, cmd.startMs, cmd.vars))
  return {}
}

async function run(cmd: Extract<ReferenceCommand, { t: 'run' }>): Promise<ReferenceReply> {
  let rows = 0
  let batches = 0
  let busy = 0
  const start = now()
  const deadline = start + cmd.durationMs
  if (writer instanceof SqliteWriter) {
    // One connection: the lanes' batches one after the other; readings made outside the timed part.
    for (let i = 0; now() < deadline; i = (i + 1) % lanes.length) {
      const batch = lanes[i]!.take(cmd.batch)
      const t0 = now()
      writer.write(batch)
      busy += now() - t0
      rows += batch.length
      batches += 1
    }
  } else {
    const w = writer!
    await Promise.all(
      lanes.map(async (lane) => {
        while (now() < deadline) {
          const batch = lane.take(cmd.batch)
          await w.write(batch)
          rows += batch.length
          batches += 1
        }
      }),
    )
    busy = now() - start
  }
  const seconds = (now() - start) / 1000
  return { rows, batches, seconds, busy: busy / 1000, perSecond: rows / (busy / 1000) }
}

async function handle(cmd: ReferenceCommand): Promise<unknown> {
  switch (cmd.t) {
    case 'setup':
      return setup(cmd)
    case 'run':
      return run(cmd)
    case 'close':
      sqlite?.close()
      await pg?.end({ timeout: 2 })
      return {}
  }
}

process.on('message', (message: ReferenceCommand & { id: number }) => {
  handle(message).then(
    (reply) => process.send!({ id: message.id, ...(reply as object) }),
    (error) => process.send!({ id: message.id, error: String(error?.stack ?? error) }),
  )
})
process.send!({ t: 'up' })
