// Starts the history background work on an instance: the rollup catch-up every second and, when
// READINGS_RETENTION is set, retention passes. On several instances each pass locks the watermark
// (the writer lock on SQLite, its row on PostgreSQL) and reads it inside, so work is never done twice
// (docs/storage.md#history).
import type { Config } from '../../config'
import type { Services } from '../../context'
import { catchUp } from './rollups'
import { pruneReadings } from './retention'

export const ROLLUP_INTERVAL_SECONDS = 1

export function startHistory(services: Services, config: Pick<Config, 'history'>) {
  const { db, intelligence } = services
  if (config.history.rollups)
    intelligence.every(ROLLUP_INTERVAL_SECONDS, () => catchUp(db), 'rollup catch-up')
  const retention = config.history.retentionMs
  if (retention !== undefined)
    intelligence.every(
      config.history.retentionInterval,
      async () => {
        await catchUp(db)
        await pruneReadings(db, retention)
      },
      'readings retention',
    )
}
