// REST routes for sensors under /api/v1/sensors.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { checkBody, isPlainObject } from '../../lib/json-body'
import { errors, IdParams } from '../../lib/schemas'
import { checkRules } from '../thresholds/service'
import { Sensor, SensorCreate, SensorPatch, SensorQuery } from './model'
import {
  createSensor,
  deleteSensor,
  getSensor,
  listSensors,
  patchSensor,
  replaceSensor,
} from './service'

/** A sensor body's `thresholds` checked as sent (lib/json-body.ts says why). */
const sensorBody = checkBody((body) => {
  if (isPlainObject(body) && body.thresholds != null) checkRules(body.thresholds)
})

export const sensorsModule = (services: Services) =>
  new Elysia({ name: 'sensors', prefix: '/api/v1/sensors', detail: { tags: ['sensors'] } })
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listSensors(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        query: SensorQuery,
        response: { 200: t.Array(Sensor), ...errors },
        detail: { summary: 'List sensors', description: 'The total count is in X-Total-Count.' },
      },
    )
    .get('/:id', ({ params }) => getSensor(services, params.id), {
      params: IdParams,
      response: { 200: Sensor, ...errors },
      detail: {
        summary: 'Get a sensor',
        description: 'The sensor with this id; 404 when there is none.',
      },
    })
    .post('/', async ({ body, status }) => status(201, await createSensor(services, body)), {
      parse: 'json',
      transform: sensorBody,
      body: SensorCreate,
      response: { 201: Sensor, ...errors },
      detail: {
        summary: 'Create a sensor',
        description: 'Emits `created` on sensors, sensors:<id>, general.',
      },
    })
    .put('/:id', ({ params, body }) => replaceSensor(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      transform: sensorBody,
      body: SensorCreate,
      response: { 200: Sensor, ...errors },
      detail: {
        summary: 'Replace a sensor',
        description:
          'Every field is set from the body (a field left out becomes null). Emits `updated` on sensors, sensors:<id>, general.',
      },
    })
    .patch('/:id', ({ params, body }) => patchSensor(services, params.id, body), {
      params: IdParams,
      parse: 'json',
      transform: sensorBody,
      body: SensorPatch,
      response: { 200: Sensor, ...errors },
      detail: {
        summary: 'Update some fields of a sensor',
        description:
          'Only the fields in the body change. Emits `updated` on sensors, sensors:<id>, general.',
      },
    })
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deleteSensor(services, params.id)
        return status(204, undefined)
      },
      {
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a sensor',
          description: 'Also deletes its readings, anomalies and predictions.',
        },
      },
    )
