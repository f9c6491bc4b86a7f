// Sensor schemas: the original's `tipo` and `modelo`, an optional name and location.
import { t } from 'elysia'
import { MAX_OFFLINE_AFTER } from '../../config'
import { BodyId, BodyInt, Id, OneOf, pagination, Text } from '../../lib/schemas'
import { Thresholds } from '../thresholds/model'

export const SENSOR_STATUSES = ['unknown', 'online', 'offline'] as const
export const SensorStatus = OneOf(SENSOR_STATUSES, {
  description: 'unknown until its first reading; offline once silent past offline_after',
  examples: ['online'],
})
export const OfflineAfter = BodyInt({
  minimum: 0,
  maximum: MAX_OFFLINE_AFTER,
  description: 'Seconds of silence before the sensor is offline; 0 = never',
  examples: [300],
})

export const Sensor = t.Object({
  id: t.Integer({ examples: [1] }),
  tipo: t.String({ examples: ['temperatura'] }),
  modelo: t.String({ examples: ['DHT22'] }),
  nombre: t.Nullable(t.String({ examples: ['Sala de servidores'] })),
  location_id: t.Nullable(t.Integer({ examples: [3] })),
  thresholds: t.Nullable(Thresholds),
  status: SensorStatus,
  last_seen: t.Nullable(
    t.String({ format: 'date-time', description: 'When its last reading was stored' }),
  ),
  offline_after: t.Nullable(
    t.Integer({
      description:
        'Its own limit in seconds; null takes its type’s (/api/v1/sensor-types/:tipo/liveness), then SENSOR_OFFLINE_AFTER',
      examples: [300],
    }),
  ),
  created_at: t.String({ format: 'date-time', examples: ['2025-07-20T10:30:00Z'] }),
  updated_at: t.String({ format: 'date-time', examples: ['2025-07-20T10:30:00Z'] }),
})
export type Sensor = typeof Sensor.static

const fields = {
  tipo: Text(100, 'temperatura'),
  modelo: Text(100, 'DHT22'),
  nombre: t.Optional(t.Nullable(Text(200, 'Sala de servidores'))),
  location_id: t.Optional(t.Nullable(BodyId)),
  thresholds: t.Optional(t.Nullable(Thresholds)),
  offline_after: t.Optional(t.Nullable(OfflineAfter)),
}

export const SensorCreate = t.Object(fields)
export type SensorCreate = typeof SensorCreate.static

export const SensorPatch = t.Partial(t.Object(fields), { minProperties: 1 })
export type SensorPatch = typeof SensorPatch.static

export const SensorQuery = t.Object({
  ...pagination,
  tipo: t.Optional(t.String({ maxLength: 100, description: 'Only sensors of this type' })),
  location_id: t.Optional(Id),
  status: t.Optional(SensorStatus),
})
export type SensorQuery = typeof SensorQuery.static
