// READINGS_RETENTION: deletes raw readings older than the cut (aligned down to an hour, so every rollup
// bucket is wholly kept or wholly pruned) in small transactions, only those the rollups already hold.
import { and, eq, inArray, lt, lte } from 'drizzle-orm'
import type { Database } from '../../db'
import { historyState, readings } from '../../db/schema'
import { materializeReadings } from '../../realtime/reading-frames'
import { historyStateOf, HOUR } from './rollups'

/** Readings deleted per transaction: each holds the writer for a few milliseconds at most. */
const CHUNK = 500

/** The first instant whose readings are kept, for a retention of `retentionMs` at `now`. */
export const retentionCut = (now: number, retentionMs: number) =>
  Math.floor((now - retentionMs) / HOUR) * HOUR

/**
 * One retention pass: deletes, CHUNK at a time, readings before the cut that the rollups cover, and
 * records the cut (corrections before it are refused from then on). Answers how many it deleted.
 */
export async function pruneReadings(db: Database, retentionMs: number, now = Date.now()) {
  const cut = retentionCut(now, retentionMs)
  let deleted = 0
  for (;;) {
    const n = await db.transaction(async (tx) => {
      await tx.insert(historyState).values({ id: 1 }).onConflictDoNothing()
      const state = await historyStateOf(tx)
      if (state.pruned_before < cut)
        await tx.update(historyState).set({ pruned_before: cut }).where(eq(historyState.id, 1))
      const ids = (
        await tx
          .select({ id: readings.id })
          .from(readings)
          .where(and(lt(readings.timestamp, cut), lte(readings.id, state.watermark)))
          .limit(CHUNK)
      ).map((r) => r.id)
      if (ids.length) {
        await materializeReadings(tx, inArray(readings.id, ids))
        await tx.delete(readings).where(inArray(readings.id, ids))
      }
      return ids.length
    })
    deleted += n
    if (n < CHUNK) return deleted
    // Between chunks the writer is free: ingest waiting on it goes first.
    await Bun.sleep(1)
  }
}
