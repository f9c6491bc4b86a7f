// The intelligence runtime of an instance: detector states in memory (written back every second, and
// on PostgreSQL checked against the database per sensor and written at once when another instance had
// the sensor), the forecast job queue, and the re-forecast schedule.
import type { Config } from '../config'
import { onRollback, sqliteClient, type Database, type Tx } from '../db'
import { bulkInsert } from '../db/bulk'
import { prepared, selectByIds } from '../db/prepared'
import { detectorProgress, detectorState } from '../db/schema'
import type { Logger } from '../lib/logger'
import {
  FLUSH_SENSORS,
  markWritten,
  PROGRESS_TAIL,
  progressOf,
  uncheckedReadings,
  type Span,
  type Unchecked,
} from './progress'
import { JobQueue } from './queue'
import type { VariableState } from './state'
import { packedWithoutSeason, revive, seasonOf, unchanged, type Season } from './stored'

export { revive } from './stored'
export type { Span, Unchecked } from './progress'

/**
 * A sensor variable's key, the same string object each time: a key built afresh is a new string that every
 * Map it meets must flatten and hash again (about a microsecond per reading of five variables on the ingest
 * path). Bounded: past INTERNED_MAX keys the table starts again (identity is a speed-up, never relied on).
 */
const interned = new Map<number, Map<string, string>>()
let internedCount = 0
const INTERNED_MAX = 200_000
export const stateKey = (sensorId: number, variable: string) => {
  let bySensor = interned.get(sensorId)
  if (!bySensor) interned.set(sensorId, (bySensor = new Map()))
  let key = bySensor.get(variable)
  if (key === undefined) {
    if (++internedCount > INTERNED_MAX) {
      interned.clear()
      interned.set(sensorId, bySensor)
      bySensor.clear()
      internedCount = 1
    }
    bySensor.set(variable, (key = `${sensorId}:${variable}`))
  }
  return key
}

/** A state written back only if its sensor still exists (a deleted sensor's states go with it). */
const WRITE_BACK_SQL = `insert into detector_state (sensor_id, variable, rev, state, updated_at)
  select ?1, ?2, ?3, ?4, ?5 where exists (select 1 from sensors where id = ?1)
  on conflict (sensor_id, variable) do update set rev = excluded.rev, state = excluded.state, updated_at = excluded.updated_at`

/** States by key, and (PostgreSQL) the readings to check again with them before any new one. */
export class Taken extends Map<string, VariableState> {
  unchecked: Unchecked[] = []
}

/**
 * Detector states by sensor and variable, kept in memory and written back every second. A caller evicts
 * a state before changing it and puts it back once changed.
 *
 * SQLite: this process is the only writer, memory is the truth. A crash forgets at most that second of
 * learning, never a reading or an anomaly; a batch rolled back after changing states (a failed write or
 * commit) sends them back to the database's copy, as a crash would: copying every state a batch touches
 * in case it rolls back cost a tenth of the ingest.
 *
 * PostgreSQL: several instances write, and writing five states per reading was about 40 % of a single
 * POST's cost (BENCHMARKS.md, session 19). Each write of a sensor's readings records in
 * detector_progress, in its transaction, the last reading id its states have checked (`upto`), and
 * whether detector_state lags behind (`dirty_since`, the first reading id it does not reflect). A
 * cached sensor is current when its `upto` is the one this instance wrote; otherwise (another instance
 * wrote it, or this one's write rolled back) its states are read again, with the readings they lag
 * behind, which the detector checks again in order (their verdicts were recorded when first checked),
 * and that transaction writes them at once. A sensor this instance keeps writing is written back every
 * second. So a crash loses no learning either: the next writer checks again what the states missed.
 */
export class DetectorStates {
  private readonly cache = new Map<string, VariableState>()
  /** The variables cached per sensor, so a sensor's entries can be checked without a scan of the cache. */
  private readonly cachedOf = new Map<number, Set<string>>()
  /** SQLite: the database written back to, the states changed since, the sensors read in full. */
  private readonly memory: { db: Database; dirty: Set<string>; loaded: Set<number> } | undefined
  /** SQLite: the states the transaction in progress changes. */
  private changing: Set<string> | undefined
  /**
   * PostgreSQL: the progress `upto` each cached sensor is current at; the sensors read again in the
   * transaction in progress (written at once); those written back later, with the `upto` they were left
   * at; and the season each row holds, as this instance last read or wrote it.
   */
  private readonly shared:
    | {
        db: Database
        uptoOf: Map<number, number>
        reread: Set<number>
        dirty: Map<number, number>
        seasons: Map<string, Season>
      }
    | undefined
  private timer: Timer | undefined
  private flushing: Promise<void> | undefined

  /** `writeBackMs`: how often changed states are written back (and once more at shutdown). */
  constructor(db: Database, writeBackMs = 1000) {
    if (db.dialect === 'sqlite') this.memory = { db, dirty: new Set(), loaded: new Set() }
    else
      this.shared = {
        db,
        uptoOf: new Map(),
        reread: new Set(),
        dirty: new Map(),
        seasons: new Map(),
      }
    this.timer = setInterval(() => {
      if (!this.flushing) void this.flush().catch(() => undefined)
    }, writeBackMs)
    this.timer.unref()
  }

  /** The states of these sensors' variables: cached where current, else read from the database. */
  async take(tx: Tx, sensorIds: number[]): Promise<Taken> {
    if (this.memory) return this.takeFromMemory(tx, sensorIds)
    const shared = this.shared!
    const out = new Taken()
    const progress = await progressOf(tx, sensorIds)
    const at = new Map(progress.map((row) => [row.sensor_id, row]))
    const stale: number[] = []
    for (const id of sensorIds) {
      const row = at.get(id)
      if (row && shared.uptoOf.get(id) === row.upto) this.addCached(id, out)
      else stale.push(id)
    }
    if (stale.length === 0) return out
    for (const id of stale) {
      this.drop(id)
      shared.reread.add(id)
    }
    const lagging = stale.filter((id) => at.get(id)?.dirty_since != null)
    const [rows, unchecked] = await Promise.all([
      selectByIds(tx, 'detector-states', stale, (match) =>
        tx.select().from(detectorState).where(match(detectorState.sensor_id)),
      ),
      lagging.length > 0 ? uncheckedReadings(tx, lagging, at) : [],
    ])
    for (const row of rows) {
      const key = stateKey(row.sensor_id, row.variable)
      const state = revive(row)
      this.remember(key, row.sensor_id, row.variable, state)
      out.set(key, state)
      if (row.season) shared.seasons.set(key, seasonOf(state))
    }
    out.unchecked = unchecked
    return out
  }

  /** PostgreSQL: forgets what this instance holds of a sensor (it is read again). */
  private drop(id: number) {
    const shared = this.shared!
    for (const variable of this.cachedOf.get(id) ?? []) {
      const key = stateKey(id, variable)
      this.cache.delete(key)
      shared.seasons.delete(key)
    }
    this.cachedOf.delete(id)
    shared.uptoOf.delete(id)
    shared.dirty.delete(id)
  }
  /** SQLite: every state of these sensors, read from the database the first time a sensor is seen. */
  private async takeFromMemory(tx: Tx, sensorIds: number[]) {
    const { loaded } = this.memory!
    const out = new Taken()
    const unread = sensorIds.filter((id) => !loaded.has(id))
    const rows = await selectByIds(tx, 'detector-states', unread, (match) =>
      tx.select().from(detectorState).where(match(detectorState.sensor_id)),
    )
    for (const row of rows) {
      const key = stateKey(row.sensor_id, row.variable)
      if (!this.cache.has(key)) this.remember(key, row.sensor_id, row.variable, revive(row))
    }
    for (const id of unread) loaded.add(id)
    for (const id of sensorIds) this.addCached(id, out)
    return out
  }

  /** Adds a sensor's cached states to `out`, by key (a plain loop: a generator cost 2 % of a single POST). */
  private addCached(id: number, out: Map<string, VariableState>) {
    const variables = this.cachedOf.get(id)
    if (!variables) return
    for (const variable of variables) {
      const key = stateKey(id, variable)
      out.set(key, this.cache.get(key)!)
    }
  }

  private remember(key: string, sensorId: number, variable: string, state: VariableState) {
    this.cache.set(key, state)
    let cached = this.cachedOf.get(sensorId)
    if (!cached) this.cachedOf.set(sensorId, (cached = new Set()))
    cached.add(variable)
  }

  /**
   * Called before a state is changed in a transaction: on PostgreSQL its sensor is not current in the
   * cache until put() (a rolled-back change is read again); on SQLite it is forgotten if that
   * transaction rolls back.
   */
  evict(key: string, tx: Tx) {
    if (this.shared) return void this.shared.uptoOf.delete(splitKey(key)[0])
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

  /**
   * Keeps changed states. PostgreSQL: `span` is the reading ids the caller's transaction stores; a
   * sensor read again in it has its states written in it, the others are left to the write back, and
   * each one's progress is written. Without a span the states are written and their sensors read again
   * when next taken.
   */
  async put(tx: Tx, states: Map<string, VariableState>, now = Date.now(), span?: Span) {
    if (this.memory) {
      // Kept in memory; written back by flush().
      this.changing = undefined
      for (const [key, state] of states) {
        // A state taken from the cache was changed in place: its entry is already this one.
        if (this.cache.get(key) !== state) {
          const [sensor, variable] = splitKey(key)
          this.remember(key, sensor, variable, state)
        }
        this.memory.dirty.add(key)
      }
      return
    }
    const shared = this.shared!
    const written: [string, VariableState][] = []
    /** Sensor → written in this transaction. */
    const sensors = new Map<number, boolean>()
    for (const [key, state] of states) {
      const [sensor, variable] = splitKey(key)
      this.remember(key, sensor, variable, state)
      const atOnce = !span || shared.reread.has(sensor)
      sensors.set(sensor, atOnce)
      if (atOnce) written.push([key, state])
    }
    const seasons = this.writeStates(tx, written, now, () => String(span?.last ?? ''))
    for (const [sensor, atOnce] of sensors) {
      shared.reread.delete(sensor)
      if (!span) shared.uptoOf.delete(sensor)
      else {
        // Current as of this write; if it rolls back, the database's upto differs and take() reads again.
        shared.uptoOf.set(sensor, span.last)
        if (atOnce) shared.dirty.delete(sensor)
        else shared.dirty.set(sensor, span.last)
      }
    }
    const progress = span
      ? bulkInsert(
          tx,
          detectorProgress,
          [...sensors].map(([sensor, atOnce]) => ({
            sensor_id: sensor,
            upto: span.last,
            dirty_since: atOnce ? null : span.first,
          })),
          PROGRESS_TAIL,
        )
      : undefined
    const [known] = await Promise.all([seasons, progress])
    for (const [key, season] of known) shared.seasons.set(key, season)
  }

  /**
   * PostgreSQL: writes states, each without its season, and the season only where the row's is not the
   * one this instance knows it holds. Answers the seasons the rows hold once this commits.
   */
  private async writeStates(
    tx: Tx,
    states: [string, VariableState][],
    now: number,
    revOf: (sensor: number) => string,
  ) {
    const seasons = new Map<string, Season>()
    if (states.length === 0) return seasons
    const known = this.shared!.seasons
    const rows = states.map(([key, state]) => {
      const [sensor, variable] = splitKey(key)
      const held = known.get(key)
      const season = held && unchanged(state, held) ? undefined : seasonOf(state)
      seasons.set(key, season ?? held!)
      return {
        sensor_id: sensor,
        variable,
        rev: revOf(sensor),
        state: packedWithoutSeason(state),
        updated_at: now,
        season: season ?? null,
      }
    })
    await bulkInsert(
      tx,
      detectorState,
      rows,
      'on conflict (sensor_id, variable) do update set rev = excluded.rev, state = excluded.state, season = coalesce(excluded.season, detector_state.season), updated_at = excluded.updated_at',
    )
    return seasons
  }

  /** Writes the states changed since the last write back, in a transaction of its own. */
  flush(): Promise<void> {
    // After the one in progress: it may have started before the latest changes.
    const running = this.flushing
    if (running) return running.catch(() => undefined).then(() => this.flush())
    const run = this.memory ? this.flushMemory() : this.flushShared()
    if (!run) return Promise.resolve()
    const flushing = run.finally(() => {
      if (this.flushing === flushing) this.flushing = undefined
    })
    this.flushing = flushing
    return flushing
  }

  private flushMemory() {
    const memory = this.memory!
    if (memory.dirty.size === 0) return undefined
    return memory.db
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
            const state = JSON.stringify(this.cache.get(key)!)
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
  }

  /**
   * PostgreSQL: the states of the sensors left to the write back, under those sensors' locks, for each
   * one still at the upto this instance left it at (else another instance wrote it since, or this one's
   * write rolled back: it is read again when next taken).
   */
  private flushShared() {
    const shared = this.shared!
    if (shared.dirty.size === 0) return undefined
    const left = new Map(shared.dirty)
    const ids = [...left.keys()]
    return (async () => {
      // A transaction per FLUSH_SENSORS sensors: each holds its sensors' locks while it writes.
      for (let i = 0; i < ids.length; i += FLUSH_SENSORS)
        await this.writeBack(ids.slice(i, i + FLUSH_SENSORS), left)
    })()
  }

  private writeBack(ids: number[], left: Map<number, number>) {
    const shared = this.shared!
    return shared.db.transaction(
      async (tx) => {
        const progress = await progressOf(tx, ids)
        const current = progress.filter(
          (row) => row.dirty_since !== null && shared.uptoOf.get(row.sensor_id) === row.upto,
        )
        const cached = new Map<string, VariableState>()
        for (const row of current) this.addCached(row.sensor_id, cached)
        const states = [...cached]
        const done = current.map((row) => row.sensor_id)
        const [seasons] = await Promise.all([
          this.writeStates(tx, states, Date.now(), (sensor) => String(shared.uptoOf.get(sensor))),
          done.length > 0 && markWritten(tx, done),
        ])
        const found = new Set(progress.map((row) => row.sensor_id))
        return { seasons, gone: ids.filter((id) => !found.has(id)) }
      },
      ({ seasons, gone }) => {
        for (const [key, season] of seasons) shared.seasons.set(key, season)
        for (const id of ids) if (shared.dirty.get(id) === left.get(id)) shared.dirty.delete(id)
        // Deleted sensors: nothing will take them again.
        for (const id of gone) this.drop(id)
      },
      { keys: ids },
    )
  }

  /** Stops the write back, after writing what is left. */
  async stop() {
    clearInterval(this.timer)
    await this.flushing?.catch(() => undefined)
    const last = this.flush()
    // PostgreSQL (the database down, say): nothing is lost, the sensor's next writer checks again what
    // its stored states lag behind.
    await (this.shared ? last.catch(() => undefined) : last)
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

/** `db` is where the detector states are written back to. */
export function createIntelligence(
  config: Readonly<Config>,
  log: Logger,
  db: Database,
): Intelligence {
  const states = new DetectorStates(db, config.intelligence.writeBackSeconds * 1000)
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
