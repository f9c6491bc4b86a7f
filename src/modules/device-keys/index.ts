// Device keys of a sensor under /api/v1/sensors/:id/keys: issue (shown once), list, revoke; admins and
// operators only, in every AUTH_MODE.
import { Elysia, t } from 'elysia'
import type { Database } from '../../db'
import { errors } from '../../lib/schemas'
import type { Guard } from '../auth/guard'
import { DeviceKey, DeviceKeyCreate, IssuedKey, KeyParams, SensorParams } from './model'
import { issueKey, listKeys, revokeKey } from './service'

export const deviceKeysModule = (db: Database, guard: Guard) =>
  new Elysia({ name: 'device-keys', prefix: '/api/v1/sensors', detail: { tags: ['sensors'] } })
    .use(guard.macro)
    .post(
      '/:id/keys',
      async ({ params, body, status }) => status(201, await issueKey(db, params.id, body ?? {})),
      {
        auth: 'write',
        params: SensorParams,
        body: t.Optional(DeviceKeyCreate),
        response: { 201: IssuedKey, ...errors },
        detail: {
          summary: 'Issue a device key for this sensor',
          description:
            'The key is in this answer only (it is stored as its SHA-256). A device sends it as Authorization: Bearer <key> to POST /api/v1/readings and /api/v1/readings/batch for this sensor, in every AUTH_MODE; anything else with it is refused.',
        },
      },
    )
    .get('/:id/keys', ({ params }) => listKeys(db, params.id), {
      auth: 'write',
      params: SensorParams,
      response: { 200: t.Array(DeviceKey), ...errors },
      detail: {
        summary: 'List the sensor’s device keys (never the keys themselves)',
        description:
          'Each key with its id, name, prefix (to recognise it), created_at, last_used_at (to the minute) and revoked_at.',
      },
    })
    .delete(
      '/:id/keys/:keyId',
      async ({ params, status }) => {
        await revokeKey(db, params.id, params.keyId)
        return status(204, undefined)
      },
      {
        auth: 'write',
        params: KeyParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Revoke a device key (at once)',
          description:
            'The next request with this key is refused with 401; the sensor’s other keys keep working.',
        },
      },
    )
