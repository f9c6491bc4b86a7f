// A reading as the REST API and its events show it, made from its row: shared by the readings service and
// the event log, which rebuilds a reading's `created` frame from the row (src/realtime/reading-frames.ts).
import { iso } from '../../lib/time'
import type { Reading } from './model'
import type { Values } from './values'

export interface ReadingRow {
  id: number
  sensor_id: number
  values: Values
  timestamp: number
  created_at: number
}

export const readingDto = (row: ReadingRow): Reading => ({
  id: row.id,
  sensor_id: row.sensor_id,
  temperatura: row.values.temperatura ?? null,
  humedad: row.values.humedad ?? null,
  values: row.values,
  timestamp: iso(row.timestamp),
  created_at: iso(row.created_at),
})
