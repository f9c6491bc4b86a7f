// Reading schemas: the original's body (sensor_id, temperatura, humedad, timestamp) and the list query.
import { t } from 'elysia'
import { BodyId, Id, Order, pagination, Timestamp, timeRange } from '../../lib/schemas'

/** Physical bounds: below absolute zero or above 1000 °C is a broken sensor, not a reading. */
export const TEMPERATURE = { minimum: -273.15, maximum: 1000 }
export const HUMIDITY = { minimum: 0, maximum: 100 }

export const Reading = t.Object({
  id: t.Integer({ examples: [42] }),
  sensor_id: t.Integer({ examples: [1] }),
  temperatura: t.Nullable(t.Number({ examples: [23.5] })),
  humedad: t.Nullable(t.Number({ examples: [65.2] })),
  timestamp: t.String({ format: 'date-time', examples: ['2025-07-20T10:30:00Z'] }),
  created_at: t.String({ format: 'date-time' }),
})
export type Reading = typeof Reading.static

const values = {
  temperatura: t.Optional(
    t.Nullable(t.Number({ ...TEMPERATURE, description: 'Degrees Celsius', examples: [23.5] })),
  ),
  humedad: t.Optional(
    t.Nullable(t.Number({ ...HUMIDITY, description: 'Relative humidity, %', examples: [65.2] })),
  ),
}

export const ReadingCreate = t.Object({
  sensor_id: BodyId,
  ...values,
  timestamp: t.Optional(
    Timestamp('When it was measured (ISO 8601, UTC); the server time if left out'),
  ),
})
export type ReadingCreate = typeof ReadingCreate.static

export const ReadingBatch = t.Array(ReadingCreate, {
  minItems: 1,
  maxItems: 10_000,
  description: 'Up to 10,000 readings, stored in one transaction (all or none)',
})
export type ReadingBatch = typeof ReadingBatch.static

export const ReadingReplace = t.Object({
  sensor_id: BodyId,
  ...values,
  timestamp: Timestamp(),
})
export type ReadingReplace = typeof ReadingReplace.static

export const ReadingPatch = t.Partial(ReadingReplace, { minProperties: 1 })
export type ReadingPatch = typeof ReadingPatch.static

export const ReadingQuery = t.Object({
  ...pagination,
  sensor_id: t.Optional(Id),
  ...timeRange,
  order: Order,
})
export type ReadingQuery = typeof ReadingQuery.static
