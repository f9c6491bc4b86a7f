// REST routes for anomalies under /api/v1/anomalies.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { errors, IdParams } from '../../lib/schemas'
import { Anomaly, AnomalyCreate, AnomalyPatch, AnomalyQuery } from './model'
import {
  acknowledgeAnomaly,
  createAnomaly,
  deleteAnomaly,
  getAnomaly,
  listAnomalies,
  patchAnomaly,
  replaceAnomaly,
  resolveAnomaly,
} from './service'

export const anomaliesModule = (services: Services) =>
  new Elysia({ name: 'anomalies', prefix: '/api/v1/anomalies', detail: { tags: ['anomalies'] } })
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listAnomalies(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        query: AnomalyQuery,
        response: { 200: t.Array(Anomaly), ...errors },
        detail: { summary: 'List anomalies', description: 'Most recently seen first.' },
      },
    )
    .get('/:id', ({ params }) => getAnomaly(services, params.id), {
      params: IdParams,
      response: { 200: Anomaly, ...errors },
      detail: {
        summary: 'Get an anomaly',
        description: 'The anomaly with this id; 404 when there is none.',
      },
    })
    .post('/', async ({ body, status }) => status(201, await createAnomaly(services, body)), {
      parse: 'json',
      body: AnomalyCreate,
      response: { 201: Anomaly, ...errors },
      detail: {
        summary: 'Record an anomaly by hand',
        description:
          'Emits `anomaly_detected` on anomalies, anomalies:<sensor_id>, sensors:<sensor_id> and general.',
      },
    })
    .post('/:id/acknowledge', ({ params }) => acknowledgeAnomaly(services, params.id), {
      params: IdParams,
      response: { 200: Anomaly, ...errors },
      detail: {
        summary: 'Acknowledge an anomaly',
        description:
          'open → acknowledged (emits `updated`). Further hits still count on it; 409 when it is already resolved.',
      },
    })
    .post('/:id/resolve', ({ params }) => resolveAnomaly(services, params.id), {
      params: IdParams,
      response: { 200: Anomaly, ...errors },
      detail: {
        summary: 'Resolve an anomaly',
        description:
          'open or acknowledged → resolved (emits `updated`); a new hit afterwards opens a new anomaly.',
      },
    })
    .put('/:id', ({ params, body }) => replaceAnomaly(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      body: AnomalyCreate,
      response: { 200: Anomaly, ...errors },
      detail: {
        summary: 'Replace an anomaly',
        description:
          'Optional fields left out are cleared and a status left out is open; the status changes by the same rules as PATCH.',
      },
    })
    .patch('/:id', ({ params, body }) => patchAnomaly(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      body: AnomalyPatch,
      response: { 200: Anomaly, ...errors },
      detail: {
        summary: 'Update an anomaly (for example its status)',
        description:
          'A `status` follows the rules of /acknowledge and /resolve: the status it already has changes nothing (no event, no timestamp moves); acknowledged stamps acknowledged_at and is 409 once resolved; resolved stamps resolved_at and keeps acknowledged_at; open reopens it and clears both.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteAnomaly(services, params.id)
        return status(204, undefined)
      },
      {
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete an anomaly',
          description:
            'Emits `deleted` on anomalies, anomalies:<sensor_id>, sensors:<sensor_id>, general.',
        },
      },
    )
