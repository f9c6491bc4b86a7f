// Sensor schemas: the original's `tipo` and `modelo`, an optional name and location.
import { t } from 'elysia'
import { BodyId, Id, pagination, Text } from '../../lib/schemas'
import { Thresholds } from '../thresholds/model'

export const Sensor = t.Object({
  id: t.Integer({ examples: [1] }),
  tipo: t.String({ examples: ['temperatura'] }),
  modelo: t.String({ examples: ['DHT22'] }),
  nombre: t.Nullable(t.String({ examples: ['Sala de servidores'] })),
  location_id: t.Nullable(t.Integer({ examples: [3] })),
  thresholds: t.Nullable(Thresholds),
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
}

export const SensorCreate = t.Object(fields)
export type SensorCreate = typeof SensorCreate.static

export const SensorPatch = t.Partial(t.Object(fields), { minProperties: 1 })
export type SensorPatch = typeof SensorPatch.static

export const SensorQuery = t.Object({
  ...pagination,
  tipo: t.Optional(t.String({ maxLength: 100, description: 'Only sensors of this type' })),
  location_id: t.Optional(Id),
})
export type SensorQuery = typeof SensorQuery.static
