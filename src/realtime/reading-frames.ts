// Lean event rows: a reading's `created` event is stored without its frame (payload '', reading_id set),
// so the log holds no second copy of every reading. The frame is rebuilt here from the readings row, byte
// for byte, and written whole into its event row (materialized) before anything changes or deletes the row.
import { eq, sql, type SQL } from 'drizzle-orm'
import { isSqlite, sqliteClient, type Tx } from '../db'
import { pgExecute } from '../db/postgres'
import { prepared } from '../db/prepared'
import { events, readings } from '../db/schema'
import { readingDto, type ReadingRow } from '../modules/readings/dto'
import { jsonbOrdered, type Values } from '../modules/readings/values'
import { entityEventMessage, type DomainEvent } from './envelope'

/**
 * The reading whose row can stand for this event's frame, or null: a reading's plain `created` event
 * (its data is readingDto of the row as inserted; no extra metadata). On PostgreSQL only when the
 * measurements are in jsonb's order, the order they are read back in.
 */
export function leanReading(event: DomainEvent, sqlite: boolean): number | null {
  if (
    event.entity_type !== 'reading' ||
    event.event_type !== 'created' ||
    event.action !== 'create_reading' ||
    event.metadata !== undefined
  )
    return null
  if (!sqlite && !jsonbOrdered(event.data.values as Values)) return null
  return event.entity_id
}

/** The frame a reading's `created` event with this seq and time sent: what entityEventMessage made. */
export const readingFrame = (seq: number, at: number, row: ReadingRow) =>
  JSON.stringify(
    entityEventMessage(
      {
        entity_type: 'reading',
        event_type: 'created',
        entity_id: row.id,
        data: readingDto(row),
        action: 'create_reading',
      },
      seq,
      at,
    ),
  )

/** The reading columns a frame is rebuilt from, selected next to an event row. */
export const readingColumns = {
  sensor_id: readings.sensor_id,
  values: readings.values,
  timestamp: readings.timestamp,
  reading_created_at: readings.created_at,
}

/**
 * Writes the whole frame into every lean event row of the readings `which` selects, in the caller's
 * transaction, before it updates or deletes them: replay then sends what went out at the time.
 */
export async function materializeReadings(tx: Tx, which: SQL): Promise<number> {
  const rows = await tx
    .select({ seq: events.seq, at: events.created_at, id: readings.id, ...readingColumns })
    .from(events)
    .innerJoin(readings, eq(readings.id, events.reading_id))
    .where(which)
  if (rows.length === 0) return 0
  const frames = rows.map((r) => ({
    seq: r.seq,
    payload: readingFrame(r.seq, r.at, { ...r, created_at: r.reading_created_at }),
  }))
  if (isSqlite(tx)) {
    const update = prepared(tx, 'materialize-reading', () =>
      sqliteClient(tx).prepare('update events set payload = ?, reading_id = null where seq = ?'),
    )
    for (const f of frames) update.run(f.payload, f.seq)
  } else
    await pgExecute(
      tx,
      sql`update events e set payload = f.payload, reading_id = null
      from json_to_recordset(${JSON.stringify(frames)}::text::json) as f(seq bigint, payload text)
      where e.seq = f.seq`,
    )
  return frames.length
}
