// Reading schemas: the original's body (sensor_id, temperatura, humedad, timestamp) plus `values`, any
// named numeric measurements, and the list query.
import { t } from 'elysia'
import { BodyId, Id, Order, pagination, Timestamp, timeRange } from '../../lib/schemas'
import { VARIABLE_NAME } from '../variables/model'

/** Physical bounds: below absolute zero or above 1000 °C is a broken sensor, not a reading. */
export const TEMPERATURE = { minimum: -273.15, maximum: 1000 }
export const HUMIDITY = { minimum: 0, maximum: 100 }
/** The most measurements one reading may carry. */
export const MAX_MEASUREMENTS = 100

const NAME_KEY = t.String({ pattern: VARIABLE_NAME })
const Measurements = t.Record(NAME_KEY, t.Number(), {
  maxProperties: MAX_MEASUREMENTS,
  description: `Any named measurements: names of lower-case letters, digits and _ (starting with a letter, at most 63), finite numbers, at most ${MAX_MEASUREMENTS}; temperatura (-273.15..1000) and humedad (0..100) keep their bounds`,
  examples: [{ co2: 415, presion: 1013.2 }],
})
const MeasurementsPatch = t.Record(NAME_KEY, t.Nullable(t.Number()), {
  maxProperties: MAX_MEASUREMENTS,
  description: 'Measurements to set; null removes one',
  examples: [{ co2: 420, presion: null }],
})

export const Reading = t.Object({
  id: t.Integer({ examples: [42] }),
  sensor_id: t.Integer({ examples: [1] }),
  temperatura: t.Nullable(t.Number({ examples: [23.5] })),
  humedad: t.Nullable(t.Number({ examples: [65.2] })),
  values: t.Record(t.String(), t.Number(), {
    description: 'Every measurement of the reading, temperatura and humedad included',
    examples: [{ temperatura: 23.5, humedad: 65.2, co2: 415 }],
  }),
  timestamp: t.String({ format: 'date-time', examples: ['2025-07-20T10:30:00Z'] }),
  created_at: t.String({ format: 'date-time' }),
})
export type Reading = typeof Reading.static

/** The original's two measurements, at the top level of the body. */
const original = {
  temperatura: t.Optional(
    t.Nullable(t.Number({ ...TEMPERATURE, description: 'Degrees Celsius', examples: [23.5] })),
  ),
  humedad: t.Optional(
    t.Nullable(t.Number({ ...HUMIDITY, description: 'Relative humidity, %', examples: [65.2] })),
  ),
}

export const ReadingCreate = t.Object(
  {
    sensor_id: BodyId,
    ...original,
    values: t.Optional(Measurements),
    timestamp: t.Optional(
      Timestamp('When it was measured (ISO 8601, UTC); the server time if left out'),
    ),
  },
  {
    description: 'At least one measurement: temperatura, humedad (the original body) and/or values',
    examples: [
      { sensor_id: 1, temperatura: 23.5, humedad: 65.2, timestamp: '2025-07-20T10:30:00Z' },
      { sensor_id: 1, values: { co2: 415, presion: 1013.2 }, timestamp: '2025-07-20T10:30:00Z' },
    ],
  },
)
export type ReadingCreate = typeof ReadingCreate.static

export const ReadingBatch = t.Array(ReadingCreate, {
  minItems: 1,
  maxItems: 10_000,
  description: 'Up to 10,000 readings, stored in one transaction (all or none)',
})
export type ReadingBatch = typeof ReadingBatch.static

export const ReadingReplace = t.Object({
  sensor_id: BodyId,
  ...original,
  values: t.Optional(Measurements),
  timestamp: Timestamp(),
})
export type ReadingReplace = typeof ReadingReplace.static

export const ReadingPatch = t.Partial(
  t.Object({
    sensor_id: Id,
    ...original,
    values: MeasurementsPatch,
    timestamp: Timestamp(),
  }),
  { minProperties: 1 },
)
export type ReadingPatch = typeof ReadingPatch.static

export const ReadingQuery = t.Object({
  ...pagination,
  sensor_id: t.Optional(Id),
  ...timeRange,
  order: Order,
})
export type ReadingQuery = typeof ReadingQuery.static
