// The last-value store: the newest value of every sensor variable, kept in the transaction that stores
// readings (one upsert per sensor variable per batch, only when newer), and repaired after an edit.
import { and, desc, eq, isNotNull, sql } from 'drizzle-orm'
import { isSqlite, type Tx } from '../../db'
import { measurement } from '../../db/measurements'
import { prepared } from '../../db/prepared'
import { latestValues, readings } from '../../db/schema'

type LatestRow = typeof latestValues.$inferSelect

/** A stored reading as the store needs it: `t` is its timestamp in ms. */
export interface StoredValues {
  id: number
  sensor_id: number
  values: Record<string, number>
  t: number
}

const excluded = (column: string) => sql.raw(`excluded.${column}`)

/** Newer wins: a later timestamp, or the same one from a later reading. */
const newer = sql`${excluded('timestamp')} > ${latestValues.timestamp} or (${excluded('timestamp')} = ${latestValues.timestamp} and ${excluded('reading_id')} > ${latestValues.reading_id})`

const upsert = (
  tx: Tx,
  values: LatestRow[] | Record<keyof LatestRow, unknown>,
  onlyNewer: boolean,
) =>
  tx
    .insert(latestValues)
    .values(values as LatestRow[])
    .onConflictDoUpdate({
      target: [latestValues.sensor_id, latestValues.variable],
      set: {
        value: excluded('value'),
        timestamp: excluded('timestamp'),
        reading_id: excluded('reading_id'),
      },
      setWhere: onlyNewer ? newer : undefined,
    })

const placeholders = {
  sensor_id: sql.placeholder('sensor_id'),
  variable: sql.placeholder('variable'),
  value: sql.placeholder('value'),
  timestamp: sql.placeholder('timestamp'),
  reading_id: sql.placeholder('reading_id'),
}

async function write(tx: Tx, rows: LatestRow[], onlyNewer: boolean) {
  if (rows.length === 0) return
  if (isSqlite(tx)) {
    const statement = prepared(tx, `latest-upsert:${onlyNewer}`, () =>
      upsert(tx, placeholders, onlyNewer).prepare(),
    )
    for (const row of rows) await statement.run(row)
  } else
    for (let i = 0; i < rows.length; i += 500) await upsert(tx, rows.slice(i, i + 500), onlyNewer)
}

/** Folds a batch of stored readings into the store: the batch's newest per sensor variable, if newer. */
export async function updateLatest(tx: Tx, stored: readonly StoredValues[]) {
  const newest = new Map<number, Map<string, LatestRow>>()
  for (const reading of stored) {
    let bySensor = newest.get(reading.sensor_id)
    if (!bySensor) newest.set(reading.sensor_id, (bySensor = new Map()))
    for (const variable in reading.values) {
      const current = bySensor.get(variable)
      if (
        current &&
        (current.timestamp > reading.t ||
          (current.timestamp === reading.t && current.reading_id > reading.id))
      )
        continue
      bySensor.set(variable, {
        sensor_id: reading.sensor_id,
        variable,
        value: reading.values[variable]!,
        timestamp: reading.t,
        reading_id: reading.id,
      })
    }
  }
  const rows: LatestRow[] = []
  for (const bySensor of newest.values()) for (const row of bySensor.values()) rows.push(row)
  await write(tx, rows, true)
}

/**
 * Recomputes these sensor variables from the readings (after a reading was corrected, moved or
 * deleted, its old value may have been the newest): the newest reading that measures each, or no entry.
 */
export async function refreshLatest(tx: Tx, pairs: Iterable<[sensorId: number, variable: string]>) {
  const rows: LatestRow[] = []
  for (const [sensorId, variable] of pairs) {
    const value = measurement(tx, variable)
    const [row] = await tx
      .select({ id: readings.id, timestamp: readings.timestamp, value })
      .from(readings)
      .where(and(eq(readings.sensor_id, sensorId), isNotNull(value)))
      .orderBy(desc(readings.timestamp), desc(readings.id))
      .limit(1)
    if (row)
      rows.push({
        sensor_id: sensorId,
        variable,
        value: Number(row.value),
        timestamp: row.timestamp,
        reading_id: row.id,
      })
    else
      await tx
        .delete(latestValues)
        .where(and(eq(latestValues.sensor_id, sensorId), eq(latestValues.variable, variable)))
  }
  await write(tx, rows, false)
}
