// Prediction schemas: the original's request {sensor_id, variable, horizon_minutes} and the stored forecast.
import { t } from 'elysia'
import { BodyId, BodyInt, Id, OneOf, pagination, timeRange } from '../../lib/schemas'
import { VariableName } from '../variables/model'

export const PREDICTION_STATUSES = ['pending', 'completed', 'failed'] as const

export const ForecastPoint = t.Object({
  timestamp: t.String({ format: 'date-time' }),
  value: t.Number(),
  lower: t.Optional(t.Number({ description: 'Lower bound of the prediction interval' })),
  upper: t.Optional(t.Number({ description: 'Upper bound of the prediction interval' })),
})
export type ForecastPoint = typeof ForecastPoint.static

export const Prediction = t.Object({
  id: t.Integer({ examples: [5] }),
  sensor_id: t.Integer({ examples: [1] }),
  variable: t.String({ examples: ['temperatura'] }),
  horizon_minutes: t.Integer({ examples: [60] }),
  status: OneOf(PREDICTION_STATUSES, { examples: ['completed'] }),
  model: t.Nullable(t.String({ examples: ['holt'] })),
  forecast: t.Nullable(t.Array(ForecastPoint)),
  metrics: t.Nullable(t.Record(t.String(), t.Unknown())),
  reason: t.Nullable(t.String({ description: 'Why it failed, when it did' })),
  completed_at: t.Nullable(t.String({ format: 'date-time' })),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type Prediction = typeof Prediction.static

export const PredictionCreate = t.Object({
  sensor_id: BodyId,
  variable: VariableName,
  horizon_minutes: BodyInt({
    minimum: 1,
    maximum: 10_080,
    examples: [60],
    description: 'Up to 7 days',
  }),
})
export type PredictionCreate = typeof PredictionCreate.static

export const PredictionQuery = t.Object({
  ...pagination,
  sensor_id: t.Optional(Id),
  variable: t.Optional(VariableName),
  status: t.Optional(OneOf(PREDICTION_STATUSES)),
  ...timeRange,
})
export type PredictionQuery = typeof PredictionQuery.static
