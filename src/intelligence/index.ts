// The intelligence runtime of an instance: detector states cached in memory (checked against the
// database by revision), the forecast job queue, and the re-forecast schedule.
import { inArray, sql } from 'drizzle-orm'
import type { Config } from '../config'
import type { Tx } from '../db'
import { detectorState } from '../db/schema'
import type { Logger } from '../lib/logger'
import { JobQueue } from './queue'
import { reviveState, type VariableState } from './detector'

const excluded = (column: string) => sql.raw(`excluded.${column}`)

export const VARIABLES = ['temperatura', 'humedad'] as const
export type Variable = (typeof VARIABLES)[number]

export const stateKey = (sensorId: number, variable: string) => `${sensorId}:${variable}`

/**
 * Detector states by sensor and variable. A caller evicts a state before changing it and puts it back
 * with a new revision once written, so a rolled-back batch (or another instance's write) shows up as
 * a revision mismatch and the state is read again from the database.
 */
export class DetectorStates {
  private readonly cache = new Map<string, { rev: string; state: VariableState }>()

  /** The stored states of these sensors' variables, from the cache when its revision is current. */
  async take(tx: Tx, sensorIds: number[]): Promise<Map<string, VariableState>> {
    const out = new Map<string, VariableState>()
    const stale: number[] = []
    const stored = new Set<string>()
    for (let i = 0; i < sensorIds.length; i += 500) {
      const rows = await tx
        .select({
          sensor_id: detectorState.sensor_id,
          variable: detectorState.variable,
          rev: detectorState.rev,
        })
        .from(detectorState)
        .where(inArray(detectorState.sensor_id, sensorIds.slice(i, i + 500)))
      for (const row of rows) {
        const key = stateKey(row.sensor_id, row.variable)
        stored.add(key)
        const cached = this.cache.get(key)
        if (cached && cached.rev === row.rev) out.set(key, cached.state)
        else stale.push(row.sensor_id)
      }
    }
    const reload = [...new Set(stale)]
    for (let i = 0; i < reload.length; i += 500) {
      const rows = await tx
        .select()
        .from(detectorState)
        .where(inArray(detectorState.sensor_id, reload.slice(i, i + 500)))
      for (const row of rows) {
        const key = stateKey(row.sensor_id, row.variable)
        if (!out.has(key)) out.set(key, reviveState(row.state))
      }
    }
    for (const id of sensorIds)
      for (const variable of VARIABLES)
        if (!stored.has(stateKey(id, variable))) this.cache.delete(stateKey(id, variable))
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
    for (let i = 0; i < rows.length; i += 200) {
      const chunk = rows.slice(i, i + 200)
      await tx
        .insert(detectorState)
        .values(chunk)
        .onConflictDoUpdate({
          target: [detectorState.sensor_id, detectorState.variable],
          set: {
            rev: excluded('rev'),
            state: excluded('state'),
            updated_at: excluded('updated_at'),
          },
        })
    }
    for (const row of rows)
      this.cache.set(stateKey(row.sensor_id, row.variable), { rev: row.rev, state: row.state })
  }
}

export interface Intelligence {
  readonly options: Readonly<Config['intelligence']>
  readonly states: DetectorStates
  readonly jobs: JobQueue
  /** Runs fn every `seconds` until stop(). */
  every(seconds: number, fn: () => Promise<unknown>): void
  stop(): Promise<void>
}

export function createIntelligence(config: Readonly<Config>, log: Logger): Intelligence {
  const timers: Timer[] = []
  const jobs = new JobQueue(1000, (error) =>
    log.error('forecast job failed', {
      error: error instanceof Error ? (error.stack ?? error.message) : String(error),
    }),
  )
  return {
    options: config.intelligence,
    states: new DetectorStates(),
    jobs,
    every(seconds, fn) {
      let busy = false
      const timer = setInterval(() => {
        if (busy) return
        busy = true
        fn()
          .catch((error) => log.warn('scheduled forecast pass failed', { error: String(error) }))
          .finally(() => (busy = false))
      }, seconds * 1000)
      timer.unref()
      timers.push(timer)
    },
    async stop() {
      for (const timer of timers.splice(0)) clearInterval(timer)
      await jobs.stop()
    },
  }
}
