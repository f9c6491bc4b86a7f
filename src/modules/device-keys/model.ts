// Device key schemas: the key shown once on issue, and what a list shows (never the key).
import { t } from 'elysia'
import { Id, Text } from '../../lib/schemas'

export const DeviceKeyCreate = t.Object({
  name: t.Optional(Text(100, 'Field unit 7')),
})
export type DeviceKeyCreate = typeof DeviceKeyCreate.static

export const DeviceKey = t.Object({
  id: t.Integer({ examples: [1] }),
  sensor_id: t.Integer({ examples: [5] }),
  name: t.Union([t.String(), t.Null()]),
  prefix: t.String({
    description: 'The key’s first characters, to tell keys apart',
    examples: ['vdk_AAAAAA'],
  }),
  created_at: t.String({ format: 'date-time' }),
  last_used_at: t.Union([t.String({ format: 'date-time' }), t.Null()], {
    description: 'Last use to store a reading (updated at most once a minute)',
  }),
  revoked_at: t.Union([t.String({ format: 'date-time' }), t.Null()]),
})
export type DeviceKey = typeof DeviceKey.static

export const IssuedKey = t.Composite([
  DeviceKey,
  t.Object({
    key: t.String({
      description:
        'Send as Authorization: Bearer <key>; shown only in this answer, stored as its SHA-256',
      examples: ['vdk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA'],
    }),
  }),
])
export type IssuedKey = typeof IssuedKey.static

export const SensorParams = t.Object({ id: Id })
export const KeyParams = t.Object({ id: Id, keyId: Id })
