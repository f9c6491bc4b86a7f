// REST routes for the fleet at a glance: each sensor's liveness and newest value of every variable.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { errors, IdParams } from '../../lib/schemas'
import { LatestQuery, SensorLatest } from './model'
import { listLatest, sensorLatest } from './service'

export const latestModule = (services: Services) =>
  new Elysia({ name: 'latest', prefix: '/api/v1', detail: { tags: ['latest'] } })
    .get('/latest', ({ query }) => listLatest(services, query), {
      query: LatestQuery,
      response: { 200: t.Array(SensorLatest), ...errors },
      detail: {
        summary: 'Every sensor’s status and newest value of each variable',
        description:
          'One entry per sensor (by id), from the last-value store kept in the ingest transaction; a sensor with no reading yet has status unknown and no values. Filters: location_id, tipo.',
      },
    })
    .get('/sensors/:id/latest', ({ params }) => sensorLatest(services, params.id), {
      params: IdParams,
      response: { 200: SensorLatest, ...errors },
      detail: {
        summary: 'A sensor’s status and newest value of each variable',
        description:
          'Example: {"sensor_id":1,"status":"online","last_seen":"…","values":{"co2":{"value":415,"timestamp":"…"}}}.',
      },
    })
