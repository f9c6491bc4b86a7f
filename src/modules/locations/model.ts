// Location schemas: the stored shape, what a client may send, and the list query.
import { t } from 'elysia'
import { pagination, Text } from '../../lib/schemas'

export const Location = t.Object({
  id: t.Integer({ examples: [3] }),
  nombre: t.String({ examples: ['Invernadero norte'] }),
  descripcion: t.Nullable(t.String()),
  latitud: t.Nullable(t.Number({ examples: [40.4168] })),
  longitud: t.Nullable(t.Number({ examples: [-3.7038] })),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type Location = typeof Location.static

const fields = {
  nombre: Text(200, 'Invernadero norte'),
  descripcion: t.Optional(t.Nullable(t.String({ maxLength: 2000 }))),
  latitud: t.Optional(t.Nullable(t.Number({ minimum: -90, maximum: 90, examples: [40.4168] }))),
  longitud: t.Optional(t.Nullable(t.Number({ minimum: -180, maximum: 180, examples: [-3.7038] }))),
}

export const LocationCreate = t.Object(fields)
export type LocationCreate = typeof LocationCreate.static

export const LocationPatch = t.Partial(t.Object(fields), { minProperties: 1 })
export type LocationPatch = typeof LocationPatch.static

export const LocationQuery = t.Object({
  ...pagination,
  nombre: t.Optional(
    t.String({ maxLength: 200, description: 'Only locations whose name contains this' }),
  ),
})
export type LocationQuery = typeof LocationQuery.static
