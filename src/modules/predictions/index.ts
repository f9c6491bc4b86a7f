// REST routes for predictions under /api/v1/predictions; forecasts are computed, so PUT/PATCH answer 405.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { errorResponse, errors, IdParams } from '../../lib/schemas'
import { Prediction, PredictionCreate, PredictionQuery } from './model'
import {
  deletePrediction,
  getPrediction,
  listPredictions,
  refuseEdit,
  requestPrediction,
} from './service'

const notEditableDoc = {
  params: IdParams,
  response: { 405: errorResponse(405) },
  detail: {
    summary: 'Not supported: predictions are computed, request a new one instead',
    description:
      'Always 405 (Allow lists GET, HEAD, DELETE): a forecast is not edited, a new one is requested with POST /api/v1/predictions.',
  },
}

export const predictionsModule = (services: Services) =>
  new Elysia({
    name: 'predictions',
    prefix: '/api/v1/predictions',
    detail: { tags: ['predictions'] },
  })
    .get(
      '/',
      async ({ query, set }) => {
        const page = await listPredictions(services, query)
        set.headers['x-total-count'] = String(page.total)
        return page.items
      },
      {
        query: PredictionQuery,
        response: { 200: t.Array(Prediction), ...errors },
        detail: { summary: 'List predictions', description: 'Newest first.' },
      },
    )
    .get('/:id', ({ params }) => getPrediction(services, params.id), {
      params: IdParams,
      response: { 200: Prediction, ...errors },
      detail: {
        summary: 'Get a prediction',
        description:
          'The prediction with this id: `pending` until computed, then `completed` (forecast, metrics) or `failed` (reason).',
      },
    })
    .post('/', async ({ body, status }) => status(201, await requestPrediction(services, body)), {
      parse: 'json',
      body: PredictionCreate,
      response: {
        201: Prediction,
        ...errors,
        503: errorResponse(503, {
          description:
            'The forecast queue is full (or the database is unreachable); retry after Retry-After seconds',
        }),
      },
      detail: {
        summary: 'Request a forecast',
        description:
          'Answers 201 with the stored `pending` prediction (event `created`) and computes it in the background: the model with the lowest holdout error among naive last value, Holt linear trend and Holt-Winters (daily season) forecasts up to the horizon with 95% intervals. The outcome (`completed` with forecast and metrics, or `failed` with a reason when the history is too short) is stored and announced as `prediction_completed` on predictions, predictions:<sensor_id>, sensors:<sensor_id> and general. 503 when the forecast queue is full.',
      },
    })
    .put('/:id', () => refuseEdit(), notEditableDoc)
    .patch('/:id', () => refuseEdit(), notEditableDoc)
    .delete(
      '/:id',
      async ({ params, status }) => {
        await deletePrediction(services, params.id)
        return status(204, undefined)
      },
      {
        params: IdParams,
        response: { 204: t.Void(), ...errors },
        detail: {
          summary: 'Delete a prediction',
          description:
            'Emits `deleted` on predictions, predictions:<sensor_id>, sensors:<sensor_id>, general.',
        },
      },
    )
