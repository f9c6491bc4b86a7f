// PostgreSQL: a sensor's detector progress (detector_progress, see DetectorStates): how it is written,
// and the readings a sensor's stored states lag behind, read back to be checked again.
import { sql } from 'drizzle-orm'
import type { Tx } from '../db'
import { pgExecute } from '../db/postgres'
import { anyId, selectByIds } from '../db/prepared'
import { detectorProgress, readings } from '../db/schema'

/** The sensors one write back takes (and locks) at most. */
export const FLUSH_SENSORS = 500

/** A write of a sensor's progress; a null dirty_since says the states are written as of upto. */
export const PROGRESS_TAIL = `on conflict (sensor_id) do update set upto = excluded.upto,
  dirty_since = case when excluded.dirty_since is null then null
    else coalesce(detector_progress.dirty_since, excluded.dirty_since) end`

/** These sensors' progress rows (none for a sensor never written, or deleted). */
export const progressOf = (tx: Tx, ids: readonly number[]) =>
  selectByIds(tx, 'detector-progress', ids, (match) =>
    tx.select().from(detectorProgress).where(match(detectorProgress.sensor_id)),
  )

/** Marks these sensors' stored states as written up to their `upto`. */
export const markWritten = (tx: Tx, ids: readonly number[]) =>
  pgExecute(
    tx,
    sql`update detector_progress set dirty_since = null where ${anyId(detectorProgress.sensor_id, ids)}`,
  )

/**
 * A reading a sensor's stored states have not checked (the instance that checked it kept
 * them in memory and stopped, or the sensor moved to this instance first).
 */
export interface Unchecked {
  sensor_id: number
  id: number
  t: number
  values: Record<string, number>
}

/** The reading ids a write of states stores: its first and its last. */
export interface Span {
  first: number
  last: number
}

/**
 * The readings of these sensors that their stored states lag behind (from each one's
 * dirty_since), in the order the detector checked them: transaction by transaction (`xmin`; one
 * sensor's transactions commit one after another, in id order), each in time order as detection sorts
 * a batch. The primary key's range bounds the scan to what came since.
 */
export async function uncheckedReadings(
  tx: Tx,
  ids: number[],
  at: Map<number, { upto: number; dirty_since: number | null }>,
): Promise<Unchecked[]> {
  const since = Math.min(...ids.map((id) => at.get(id)!.dirty_since!))
  const upto = Math.max(...ids.map((id) => at.get(id)!.upto))
  const rows = await pgExecute(
    tx,
    sql`select id, xmin::text as tx, sensor_id, "values"::text as v, "timestamp" from readings
      where id between ${since} and ${upto} and ${anyId(readings.sensor_id, ids)}
      order by id`,
  )
  const order = new Map<string, number>()
  const out: (Unchecked & { group: number })[] = []
  for (const row of rows) {
    const sensor = Number(row.sensor_id)
    const id = Number(row.id)
    if (id < at.get(sensor)!.dirty_since!) continue
    const tx = String(row.tx)
    if (!order.has(tx)) order.set(tx, order.size)
    out.push({
      sensor_id: sensor,
      id,
      t: Number(row.timestamp),
      values: JSON.parse(String(row.v)) as Record<string, number>,
      group: order.get(tx)!,
    })
  }
  return out.sort((a, b) => a.group - b.group || a.t - b.t || a.id - b.id)
}
