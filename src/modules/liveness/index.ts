// REST routes for per-type liveness limits under /api/v1/sensor-types/:tipo/liveness.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { checkBody, requireObject } from '../../lib/json-body'
import { errors } from '../../lib/schemas'
import { TipoParams } from '../thresholds/model'
import { TypeLiveness, TypeLivenessPut } from './model'
import { deleteTypeLiveness, getTypeLiveness, listTypeLiveness, putTypeLiveness } from './service'

export const livenessModule = (services: Services) =>
  new Elysia({ name: 'liveness', prefix: '/api/v1/sensor-types', detail: { tags: ['sensors'] } })
    .get('/liveness', () => listTypeLiveness(services), {
      response: { 200: t.Array(TypeLiveness), ...errors },
      detail: {
        summary: 'List the liveness limit of every sensor type that has one',
        description:
          'Each entry names a tipo and its offline_after in seconds; types without one use SENSOR_OFFLINE_AFTER.',
      },
    })
    .get('/:tipo/liveness', ({ params }) => getTypeLiveness(services, params.tipo), {
      params: TipoParams,
      response: { 200: TypeLiveness, ...errors },
      detail: {
        summary: 'Get the liveness limit of a sensor type',
        description:
          'The seconds a sensor of this tipo may stay silent before it goes offline, unless the sensor sets its own offline_after; 404 when the type has no limit of its own.',
      },
    })
    .put(
      '/:tipo/liveness',
      ({ params, body }) => putTypeLiveness(services, params.tipo, body.offline_after),
      {
        params: TipoParams,
        parse: 'json',
        transform: checkBody((body) => requireObject(body, '{"offline_after":300}')),
        body: TypeLivenessPut,
        response: { 200: TypeLiveness, ...errors },
        detail: {
          summary: 'Set how long sensors of a type may stay silent',
          description:
            'Every sensor of this tipo whose own offline_after is null goes offline after this many seconds without a reading (0 = never); without a type limit SENSOR_OFFLINE_AFTER applies. Example: {"offline_after":300}.',
        },
      },
    )
    .delete(
      '/:tipo/liveness',
      async ({ params, status }) => {
        await deleteTypeLiveness(services, params.tipo)
        return status(204, undefined)
      },
      {
        params: TipoParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Remove the liveness limit of a sensor type (SENSOR_OFFLINE_AFTER applies)',
          description:
            'Sensors of this tipo without an offline_after of their own fall back to SENSOR_OFFLINE_AFTER; sensors already offline stay so until their next reading.',
        },
      },
    )
