// REST routes for predictions under /api/v1/predictions; forecasts are computed, so PUT/PATCH answer 405.
import { Elysia, t } from 'elysia'
import type { Services } from '../../context'
import { errors, ErrorBody, IdParams } from '../../lib/schemas'
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
  response: { 405: ErrorBody },
  detail: { summary: 'Not supported: predictions are computed, request a new one instead' },
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
      detail: { summary: 'Get a prediction' },
    })
    .post('/', async ({ body, status }) => status(201, await requestPrediction(services, body)), {
      parse: 'json',
      body: PredictionCreate,
      response: { 201: Prediction, ...errors, 503: ErrorBody },
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
        detail: { summary: 'Delete a prediction' },
      },
    )
