// Latest-value schemas: each sensor's liveness and the newest value of each of its variables.
import { t } from 'elysia'
import { Id } from '../../lib/schemas'
import { SensorStatus } from '../sensors/model'

export const LatestValue = t.Object({
  value: t.Number({ examples: [415] }),
  timestamp: t.String({ format: 'date-time', description: 'When that value was measured' }),
})

export const SensorLatest = t.Object(
  {
    sensor_id: t.Integer({ examples: [1] }),
    status: SensorStatus,
    last_seen: t.Nullable(
      t.String({ format: 'date-time', description: 'When its last reading was stored' }),
    ),
    values: t.Record(t.String(), LatestValue, {
      description: 'The newest value of every variable the sensor has sent, by name',
    }),
  },
  {
    examples: [
      {
        sensor_id: 1,
        status: 'online',
        last_seen: '2025-07-20T10:30:00.120Z',
        values: {
          co2: { value: 415, timestamp: '2025-07-20T10:30:00Z' },
          temperatura: { value: 23.5, timestamp: '2025-07-20T10:30:00Z' },
        },
      },
    ],
  },
)
export type SensorLatest = typeof SensorLatest.static

export const LatestQuery = t.Object({
  location_id: t.Optional(Id),
  tipo: t.Optional(t.String({ maxLength: 100, description: 'Only sensors of this type' })),
})
export type LatestQuery = typeof LatestQuery.static
