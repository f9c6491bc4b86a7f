// The intelligence runtime of an instance: detector states in memory (on PostgreSQL checked against the
// database by revision and written in each batch; on SQLite, the one writer, kept in memory and written
// back every second), the forecast job queue, and the re-forecast schedule.
import { sql, type Placeholder } from 'drizzle-orm'
import type { Config } from '../config'
import { isSqlite, onRollback, sqliteClient, type Database, type Tx } from '../db'
import { bulkInsert } from '../db/bulk'
import { prepared, selectByIds } from '../db/prepared'
import { detectorState } from '../db/schema'
import type { Logger } from '../lib/logger'
import { packState, unpackState } from './packed'
import { JobQueue } from './queue'
import { reviveState, type VariableState } from './state'

const excluded = (column: string) => sql.raw(`excluded.${column}`)

type StateRow = typeof detectorState.$inferInsert
/** Inserts or replaces states: rows, or one row of placeholders to prepare. */
const upsertStates = (tx: Tx, values: StateRow[] | { [K in keyof StateRow]: Placeholder }) =>
  tx
    .insert(detectorState)
    .values(values as StateRow[])
    .onConflictDoUpdate({
      target: [detectorState.sensor_id, detectorState.variable],
      set: { rev: excluded('rev'), state: excluded('state'), updated_at: excluded('updated_at') },
    })

export const stateKey = (sensorId: number, variable: string) => `${sensorId}:${variable}`

/**
 * PostgreSQL stores a state in two parts: `season`, the daily profile's means and the envelope (about
 * half of a grown state's 2.2 KB, changed a few times an hour), written only when it changed, and
 * `state`, the rest, written every time and without its keys (packed.ts). Serializing whole states was a sixth of the server's samples on
 * single POSTs and most of the bytes their transactions sent (five states per reading); a row whose
 * `season` is null holds its whole state in `state` (as SQLite's always do).
 */
interface Season {
  m: VariableState['profile']['m']
  envelope: VariableState['envelope']
}

/** What is written every time: the state with 0 in its season's places (so revived, its keys keep their order). */
const withoutSeason = (s: VariableState) => ({ ...s, profile: { ...s.profile, m: 0 }, envelope: 0 })

const seasonOf = (s: VariableState): Season => ({
  m: [...s.profile.m],
  envelope: {
    lo: [...s.envelope.lo],
    hi: [...s.envelope.hi],
    days: [...s.envelope.days],
    last: [...s.envelope.last],
  },
})

function same(a: readonly unknown[], b: readonly unknown[]) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

const unchanged = (s: VariableState, k: Season) =>
  same(s.profile.m, k.m) &&
  same(s.envelope.lo, k.envelope.lo) &&
  same(s.envelope.hi, k.envelope.hi) &&
  same(s.envelope.days, k.envelope.days) &&
  same(s.envelope.last, k.envelope.last)

/**
 * A stored row as one state: unpacked when PostgreSQL stored it without its keys (packed.ts), its season
 * put back into its places when it was stored apart.
 */
export function revive(row: { state: unknown; season?: unknown }): VariableState {
  const season = row.season as Season | null | undefined
  const state = unpackState(row.state) as VariableState | null
  if (season && state?.profile) {
    state.profile.m = season.m
    state.envelope = season.envelope
  }
  return reviveState(state)
}

/** How often states changed on SQLite are written back (and once more at shutdown). */
const WRITE_BACK_MS = 1000

/** A state written back only if its sensor still exists (a deleted sensor's states go with it). */
const WRITE_BACK_SQL = `insert into detector_state (sensor_id, variable, rev, state, updated_at)
  select ?1, ?2, ?3, ?4, ?5 where exists (select 1 from sensors where id = ?1)
  on conflict (sensor_id, variable) do update set rev = excluded.rev, state = excluded.state, updated_at = excluded.updated_at`

/**
 * Detector states by sensor and variable. A caller evicts a state before changing it and puts it back
 * once changed. On PostgreSQL put() writes it with a new revision in the caller's transaction, so a
 * rolled-back batch (or another instance's write) shows up as a revision mismatch and the state is read
 * again from the database. On SQLite this process is the only writer: memory is the truth, changed
 * states are written back every second and at shutdown (a crash forgets at most that second of learning,
 * never a reading or an anomaly), and a batch rolled back after changing states (a failed write or
 * commit) sends them back to the database's copy, as a crash would: copying every state a batch touches
 * in case it rolls back cost a tenth of the ingest.
 */
export class DetectorStates {
  private readonly cache = new Map<string, { rev: string; state: VariableState }>()
  /**
   * PostgreSQL: the season each row holds, as of revision `rev` (this instance's last write, or its
   * last read); and each state's revision when take() last read it. put() leaves the season out only
   * when the row is still at the revision this copy describes: a rolled-back write or another
   * instance's write changes the revision, and the season is written whole again.
   */
  private readonly seasons = new Map<string, { rev: string; season: Season }>()
  private readonly takenAt = new Map<string, string>()
  /** The variables cached per sensor, so a sensor's entries can be checked without a scan of the cache. */
  private readonly cachedOf = new Map<number, Set<string>>()
  /** SQLite: the database written back to, the states changed since, the sensors read in full. */
  private readonly memory: { db: Database; dirty: Set<string>; loaded: Set<number> } | undefined
  /** SQLite: the states the transaction in progress changes. */
  private changing: Set<string> | undefined
  private timer: Timer | undefined
  private flushing: Promise<void> | undefined

  constructor(db?: Database) {
    if (db?.dialect !== 'sqlite') return
    this.memory = { db, dirty: new Set(), loaded: new Set() }
    this.timer = setInterval(() => void this.flush().catch(() => undefined), WRITE_BACK_MS)
    this.timer.unref()
  }

  /** The stored states of these sensors' variables, from the cache when its revision is current. */
  async take(tx: Tx, sensorIds: number[]): Promise<Map<string, VariableState>> {
    if (this.memory) return this.takeFromMemory(tx, sensorIds)
    const out = new Map<string, VariableState>()
    const stored = new Set<string>()
    const revisions = await selectByIds(tx, 'detector-revisions', sensorIds, (match) =>
      tx
        .select({
          sensor_id: detectorState.sensor_id,
          variable: detectorState.variable,
          rev: detectorState.rev,
        })
        .from(detectorState)
        .where(match(detectorState.sensor_id)),
    )
    const stale = new Set<number>()
    for (const row of revisions) {
      const key = stateKey(row.sensor_id, row.variable)
      stored.add(key)
      this.takenAt.set(key, row.rev)
      const cached = this.cache.get(key)
      if (cached && cached.rev === row.rev) out.set(key, cached.state)
      else stale.add(row.sensor_id)
    }
    const reloaded = await selectByIds(tx, 'detector-states', [...stale], (match) =>
      tx.select().from(detectorState).where(match(detectorState.sensor_id)),
    )
    for (const row of reloaded) {
      const key = stateKey(row.sensor_id, row.variable)
      if (out.has(key)) continue
      const state = revive(row)
      out.set(key, state)
      if (row.season) this.seasons.set(key, { rev: row.rev, season: seasonOf(state) })
    }
    // A cached state the table no longer has (its sensor deleted, its first write rolled back) is stale.
    for (const id of sensorIds) {
      const cached = this.cachedOf.get(id)
      if (!cached) continue
      for (const variable of cached) {
        const key = stateKey(id, variable)
        if (stored.has(key)) continue
        this.cache.delete(key)
        this.seasons.delete(key)
        this.takenAt.delete(key)
        cached.delete(variable)
      }
      if (cached.size === 0) this.cachedOf.delete(id)
    }
    return out
  }

  /** SQLite: every state of these sensors, read from the database the first time a sensor is seen. */
  private async takeFromMemory(tx: Tx, sensorIds: number[]) {
    const { loaded } = this.memory!
    const out = new Map<string, VariableState>()
    const unread = sensorIds.filter((id) => !loaded.has(id))
    const rows = await selectByIds(tx, 'detector-states', unread, (match) =>
      tx.select().from(detectorState).where(match(detectorState.sensor_id)),
    )
    for (const row of rows) {
      const key = stateKey(row.sensor_id, row.variable)
      if (!this.cache.has(key)) this.remember(key, row.sensor_id, row.variable, revive(row))
    }
    for (const id of unread) loaded.add(id)
    for (const id of sensorIds)
      for (const variable of this.cachedOf.get(id) ?? []) {
        const key = stateKey(id, variable)
        out.set(key, this.cache.get(key)!.state)
      }
    return out
  }

  private remember(
    key: string,
    sensorId: number,
    variable: string,
    state: VariableState,
    rev = '',
  ) {
    this.cache.set(key, { rev, state })
    let cached = this.cachedOf.get(sensorId)
    if (!cached) this.cachedOf.set(sensorId, (cached = new Set()))
    cached.add(variable)
  }

  /**
   * Called before a state is changed in a transaction: until put() writes it, the cache must not offer
   * it (PostgreSQL); on SQLite it is forgotten if that transaction rolls back.
   */
  evict(key: string, tx?: Tx) {
    if (!this.memory || !tx) return void this.cache.delete(key)
    if (!this.changing) {
      const changing = (this.changing = new Set())
      onRollback(tx, () => this.forget(changing))
    }
    this.changing.add(key)
  }

  /** SQLite: these states are read again from the database (its last write back) when next taken. */
  private forget(keys: Set<string>) {
    if (this.changing === keys) this.changing = undefined
    const { dirty, loaded } = this.memory!
    for (const key of keys) {
      const [sensor, variable] = splitKey(key)
      this.cache.delete(key)
      this.cachedOf.get(sensor)?.delete(variable)
      dirty.delete(key)
      loaded.delete(sensor)
    }
  }

  /** Writes the states back in the caller's transaction and caches them under their new revision. */
  async put(tx: Tx, states: Map<string, VariableState>, now = Date.now()) {
    if (this.memory) {
      // Kept in memory; written back by flush().
      this.changing = undefined
      for (const [key, state] of states) {
        // A state taken from the cache was changed in place: its entry is already this one.
        if (this.cache.get(key)?.state !== state) {
          const [sensor, variable] = splitKey(key)
          this.remember(key, sensor, variable, state)
        }
        this.memory.dirty.add(key)
      }
      return
    }
    const rows = [...states].map(([key, state]) => {
      const [sensor, variable] = splitKey(key)
      return {
        sensor_id: sensor,
        variable,
        rev: crypto.randomUUID(),
        state,
        updated_at: now,
      }
    })
    if (isSqlite(tx)) {
      const upsert = prepared(tx, 'detector-put', () =>
        upsertStates(tx, {
          sensor_id: sql.placeholder('sensor_id'),
          variable: sql.placeholder('variable'),
          rev: sql.placeholder('rev'),
          state: sql.placeholder('state'),
          updated_at: sql.placeholder('updated_at'),
        }).prepare(),
      )
      for (const row of rows) await upsert.run(row)
    } else await this.putSplit(tx, rows)
    for (const row of rows)
      this.remember(
        stateKey(row.sensor_id, row.variable),
        row.sensor_id,
        row.variable,
        row.state,
        row.rev,
      )
  }

  /** PostgreSQL: each state without its season, and the season only where the row's is not the same. */
  private async putSplit(tx: Tx, rows: (StateRow & { state: VariableState; rev: string })[]) {
    const written = rows.map((row) => {
      const key = stateKey(row.sensor_id, row.variable)
      const known = this.seasons.get(key)
      const keep = known !== undefined && known.rev === this.takenAt.get(key)
      const season = keep && unchanged(row.state, known.season) ? undefined : seasonOf(row.state)
      this.seasons.set(key, { rev: row.rev, season: season ?? known!.season })
      return { ...row, state: packState(withoutSeason(row.state)), season: season ?? null }
    })
    await bulkInsert(
      tx,
      detectorState,
      written,
      'on conflict (sensor_id, variable) do update set rev = excluded.rev, state = excluded.state, season = coalesce(excluded.season, detector_state.season), updated_at = excluded.updated_at',
    )
  }

  /** SQLite: writes the states changed since the last write back, in a transaction of its own. */
  flush(): Promise<void> {
    const memory = this.memory
    if (!memory || memory.dirty.size === 0) return this.flushing ?? Promise.resolve()
    this.flushing ??= memory.db
      .transaction(
        async (tx) => {
          const write = prepared(tx, 'detector-write-back', () =>
            sqliteClient(tx).prepare(WRITE_BACK_SQL),
          )
          const now = Date.now()
          const rev = crypto.randomUUID()
          const gone: string[] = []
          for (const key of memory.dirty) {
            const [sensor, variable] = splitKey(key)
            const state = JSON.stringify(this.cache.get(key)!.state)
            if (write.run(sensor, variable, rev, state, now).changes === 0) gone.push(key)
          }
          return gone
        },
        (gone) => {
          // Right after COMMIT, before any other write: every change made so far is stored.
          memory.dirty.clear()
          // Their sensor was deleted: nothing will read them again.
          for (const key of gone) {
            const [sensor, variable] = splitKey(key)
            this.cache.delete(key)
            this.cachedOf.get(sensor)?.delete(variable)
          }
        },
      )
      .then(() => undefined)
      .finally(() => (this.flushing = undefined))
    return this.flushing
  }

  /** Stops the write back, after writing what is left. */
  async stop() {
    clearInterval(this.timer)
    await this.flushing
    await this.flush()
  }
}

const splitKey = (key: string): [number, string] => {
  const at = key.indexOf(':')
  return [Number(key.slice(0, at)), key.slice(at + 1)]
}

export interface Intelligence {
  readonly options: Readonly<Config['intelligence']>
  readonly states: DetectorStates
  readonly jobs: JobQueue
  /** Runs fn every `seconds` until stop(); `what` names it in the log when a pass fails. */
  every(seconds: number, fn: () => Promise<unknown>, what?: string): void
  stop(): Promise<void>
}

/** `db` (SQLite) is where the detector states are written back to. */
export function createIntelligence(
  config: Readonly<Config>,
  log: Logger,
  db?: Database,
): Intelligence {
  const states = new DetectorStates(db)
  const timers: Timer[] = []
  /** Passes in progress: stop() waits for them, so none writes after the database closes. */
  const passes = new Set<Promise<unknown>>()
  const jobs = new JobQueue(1000, (error) =>
    log.error('forecast job failed', {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    }),
  )
  return {
    options: config.intelligence,
    states,
    jobs,
    every(seconds, fn, what = 'scheduled forecast pass') {
      let busy = false
      const timer = setInterval(() => {
        if (busy) return
        busy = true
        const pass = fn()
          .catch((error) => log.warn(`${what} failed`, { error: String(error) }))
          .finally(() => {
            busy = false
            passes.delete(pass)
          })
        passes.add(pass)
      }, seconds * 1000)
      timer.unref()
      timers.push(timer)
    },
    async stop() {
      for (const timer of timers.splice(0)) clearInterval(timer)
      await Promise.all([jobs.stop(), ...passes])
      await states.stop()
    },
  }
}
