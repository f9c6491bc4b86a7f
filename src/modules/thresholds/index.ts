// REST routes for per-type threshold defaults under /api/v1/sensor-types/:tipo/thresholds.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { checkBody } from '../../lib/json-body'
import { errors } from '../../lib/schemas'
import { Thresholds, TipoParams, TypeThresholds } from './model'
import {
  deleteTypeThresholds,
  getTypeThresholds,
  listTypeThresholds,
  checkRules,
  putTypeThresholds,
} from './service'

export const thresholdsModule = (services: Services) =>
  new Elysia({
    name: 'thresholds',
    prefix: '/api/v1/sensor-types',
    detail: { tags: ['anomalies'] },
  })
    .get('/thresholds', () => listTypeThresholds(services), {
      response: { 200: t.Array(TypeThresholds), ...errors },
      detail: {
        summary: 'List the threshold defaults of every sensor type',
        description: 'One entry per sensor type (tipo) that has default rules.',
      },
    })
    .get('/:tipo/thresholds', ({ params }) => getTypeThresholds(services, params.tipo), {
      params: TipoParams,
      response: { 200: TypeThresholds, ...errors },
      detail: {
        summary: 'Get the threshold defaults of a sensor type',
        description: 'The default rules of this tipo; 404 when it has none.',
      },
    })
    .put(
      '/:tipo/thresholds',
      ({ params, body }) => putTypeThresholds(services, params.tipo, body),
      {
        params: TipoParams,
        parse: 'json',
        transform: checkBody((body) => checkRules(body)),
        body: Thresholds,
        response: { 200: TypeThresholds, ...errors },
        detail: {
          summary: 'Set the threshold defaults of a sensor type',
          description:
            'The whole rule set: every sensor of this tipo is checked against these rules unless it sets its own rule for the variable (sensor field `thresholds`). Any variable name may have a rule, seen in a reading yet or not. Example: {"temperatura":{"min":0,"max":40,"for_readings":3},"co2":{"max":1000}}. A body that is not such an object is a 422 and changes nothing.',
        },
      },
    )
    .delete(
      '/:tipo/thresholds',
      async ({ params, status }) => {
        await deleteTypeThresholds(services, params.tipo)
        return status(204, undefined)
      },
      {
        params: TipoParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Remove the threshold defaults of a sensor type',
          description:
            'Its sensors keep only their own rules (sensor field `thresholds`); 404 when the tipo has none.',
        },
      },
    )
