// The intelligence runtime of an instance: detector states cached in memory (checked against the
// database by revision), the forecast job queue, and the re-forecast schedule.
import { sql, type Placeholder } from 'drizzle-orm'
import type { Config } from '../config'
import { isSqlite, type Tx } from '../db'
import { bulkInsert } from '../db/bulk'
import { prepared, selectByIds } from '../db/prepared'
import { detectorState } from '../db/schema'
import type { Logger } from '../lib/logger'
import { JobQueue } from './queue'
import { reviveState, type VariableState } from './detector'

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
 * Detector states by sensor and variable. A caller evicts a state before changing it and puts it back
 * with a new revision once written, so a rolled-back batch (or another instance's write) shows up as
 * a revision mismatch and the state is read again from the database.
 */
export class DetectorStates {
  private readonly cache = new Map<string, { rev: string; state: VariableState }>()
  /** The variables cached per sensor, so a sensor's entries can be checked without a scan of the cache. */
  private readonly cachedOf = new Map<number, Set<string>>()

  /** The stored states of these sensors' variables, from the cache when its revision is current. */
  async take(tx: Tx, sensorIds: number[]): Promise<Map<string, VariableState>> {
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
      const cached = this.cache.get(key)
      if (cached && cached.rev === row.rev) out.set(key, cached.state)
      else stale.add(row.sensor_id)
    }
    const reloaded = await selectByIds(tx, 'detector-states', [...stale], (match) =>
      tx.select().from(detectorState).where(match(detectorState.sensor_id)),
    )
    for (const row of reloaded) {
      const key = stateKey(row.sensor_id, row.variable)
      if (!out.has(key)) out.set(key, reviveState(row.state))
    }
    // A cached state the table no longer has (its sensor deleted, its first write rolled back) is stale.
    for (const id of sensorIds) {
      const cached = this.cachedOf.get(id)
      if (!cached) continue
      for (const variable of cached) {
        const key = stateKey(id, variable)
        if (stored.has(key)) continue
        this.cache.delete(key)
        cached.delete(variable)
      }
      if (cached.size === 0) this.cachedOf.delete(id)
    }
    return out
  }

  /** Called before a state is changed: until put() writes it, the cache must not offer it. */
  evict(key: string) {
    this.cache.delete(key)
  }

  /** Writes the states back in the caller's transaction and caches them under their new revision. */
  async put(tx: Tx, states: Map<string, VariableState>, now = Date.now()) {
    const rows = [...states].map(([key, state]) => {
      const [sensor, variable] = key.split(':')
      return {
        sensor_id: Number(sensor),
        variable: variable!,
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
    } else
      await bulkInsert(
        tx,
        detectorState,
        rows,
        'on conflict (sensor_id, variable) do update set rev = excluded.rev, state = excluded.state, updated_at = excluded.updated_at',
      )
    for (const row of rows) {
      this.cache.set(stateKey(row.sensor_id, row.variable), { rev: row.rev, state: row.state })
      let cached = this.cachedOf.get(row.sensor_id)
      if (!cached) this.cachedOf.set(row.sensor_id, (cached = new Set()))
      cached.add(row.variable)
    }
  }
}

export interface Intelligence {
  readonly options: Readonly<Config['intelligence']>
  readonly states: DetectorStates
  readonly jobs: JobQueue
  /** Runs fn every `seconds` until stop(); `what` names it in the log when a pass fails. */
  every(seconds: number, fn: () => Promise<unknown>, what?: string): void
  stop(): Promise<void>
}

export function createIntelligence(config: Readonly<Config>, log: Logger): Intelligence {
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
    states: new DetectorStates(),
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
    },
  }
}
