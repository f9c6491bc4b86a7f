// Prediction use cases: a request is stored `pending`; the forecaster completes or fails it later.
import { and, desc, eq } from 'drizzle-orm'
import type { Services } from '../../context'
import { predictions } from '../../db/schema'
import { deleteOne, findOne, findPage, insertOne, type Resource } from '../../lib/crud'
import { iso } from '../../lib/time'
import { checkSensor } from '../anomalies/service'
import type { ForecastPoint, Prediction, PredictionCreate, PredictionQuery } from './model'

type Row = typeof predictions.$inferSelect

export const predictionResource: Resource<Row, Prediction> = {
  table: predictions,
  label: 'Prediction',
  entityType: 'prediction',
  toDto: (row) => ({
    id: row.id,
    sensor_id: row.sensor_id,
    variable: row.variable as Prediction['variable'],
    horizon_minutes: row.horizon_minutes,
    status: row.status as Prediction['status'],
    model: row.model,
    forecast: (row.forecast as ForecastPoint[] | null) ?? null,
    metrics: (row.metrics as Record<string, unknown> | null) ?? null,
    reason: row.reason,
    completed_at: row.completed_at === null ? null : iso(row.completed_at),
    created_at: iso(row.created_at),
    updated_at: iso(row.updated_at),
  }),
}

export const listPredictions = ({ db }: Services, q: PredictionQuery) =>
  findPage(
    db.read,
    predictionResource,
    and(
      q.sensor_id ? eq(predictions.sensor_id, q.sensor_id) : undefined,
      q.variable ? eq(predictions.variable, q.variable) : undefined,
      q.status ? eq(predictions.status, q.status) : undefined,
    ),
    [desc(predictions.id)],
    q.limit,
    q.offset,
  )

export const getPrediction = ({ db }: Services, id: number) =>
  findOne(db.read, predictionResource, id)

export const requestPrediction = ({ emitter }: Services, input: PredictionCreate) =>
  emitter.transact(async (tx, emit) => {
    await checkSensor(tx, input.sensor_id)
    const now = Date.now()
    return insertOne(tx, emit, predictionResource, {
      ...input,
      status: 'pending',
      created_at: now,
      updated_at: now,
    })
  })

export const deletePrediction = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => deleteOne(tx, emit, predictionResource, id))
