// Prediction use cases: a request is stored `pending` and queued; the forecaster completes it (or fails
// it with a reason) off the request path and announces the outcome as prediction_completed.
import { and, asc, desc, eq, gte, inArray, isNotNull, lte } from 'drizzle-orm'
import type { Services } from '../../context'
import { measurement } from '../../db/measurements'
import { predictions, readings } from '../../db/schema'
import { latestTime, latestVariables } from '../latest/service'
import { forecastReadings, historyMs, type Point } from '../../intelligence/forecast'
import { deleteOne, findOne, findPage, insertOne, updateOne, type Resource } from '../../lib/crud'
import { AppError, UnavailableError } from '../../lib/errors'
import { instant, iso } from '../../lib/time'
import { physicalBounds } from '../readings/values'
import { checkSensors } from '../sensors/service'
import type { ForecastPoint, Prediction, PredictionCreate, PredictionQuery } from './model'

type Row = typeof predictions.$inferSelect

export const predictionResource: Resource<Row, Prediction> = {
  table: predictions,
  label: 'Prediction',
  entityType: 'prediction',
  toDto: (row) => ({
    id: row.id,
    sensor_id: row.sensor_id,
    variable: row.variable,
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

const DAY = 86_400_000
const MAX_HISTORY_ROWS = 200_000
/** A forecast stays within the variable's physical range; other variables are not bounded. */
const boundsOf = (variable: string) => {
  const bounds = physicalBounds(variable)
  return bounds
    ? { min: bounds.minimum, max: bounds.maximum }
    : { min: -Number.MAX_VALUE, max: Number.MAX_VALUE }
}

export const listPredictions = ({ db }: Services, q: PredictionQuery) =>
  findPage(
    db.read,
    predictionResource,
    and(
      q.sensor_id ? eq(predictions.sensor_id, q.sensor_id) : undefined,
      q.variable ? eq(predictions.variable, q.variable) : undefined,
      q.status ? eq(predictions.status, q.status) : undefined,
      q.from ? gte(predictions.created_at, instant(q.from, 'from')) : undefined,
      q.to ? lte(predictions.created_at, instant(q.to, 'to')) : undefined,
    ),
    [desc(predictions.id)],
    q.limit,
    q.offset,
  )

/** Predictions are computed: PUT and PATCH are refused with 405, whatever the id. */
export function refuseEdit(): never {
  const error = new AppError(
    405,
    'method_not_allowed',
    'Predictions are computed by the server and cannot be edited; request a new one with POST /api/v1/predictions.',
  )
  error.headers = { allow: 'GET, HEAD, DELETE, OPTIONS' }
  throw error
}

export const getPrediction = ({ db }: Services, id: number) =>
  findOne(db.read, predictionResource, id)

/** Stores the request `pending` (event `created`) and queues its computation. */
export async function requestPrediction(services: Services, input: PredictionCreate) {
  const { emitter, intelligence } = services
  if (intelligence.jobs.full)
    throw new UnavailableError(
      'The forecast queue is full; retry in a minute or two when the pending forecasts are done.',
    )
  const pending = await emitter.transact(async (tx, emit) => {
    await checkSensors(tx, [input.sensor_id])
    const now = Date.now()
    return insertOne(tx, emit, predictionResource, {
      ...input,
      status: 'pending',
      created_at: now,
      updated_at: now,
    })
  })
  intelligence.jobs.push(() => computePrediction(services, pending.id))
  return pending
}

/**
 * The sensor variable's history, oldest first, as far back as the horizon needs, counted back from
 * its newest value (the last-value store has it).
 */
async function loadHistory({ db }: Services, sensorId: number, variable: string, horizon: number) {
  const column = measurement(db.read, variable)
  const latest = await latestTime(db.read, sensorId, variable)
  if (latest === undefined) return []
  const rows = await db.read
    .select({ t: readings.timestamp, x: column })
    .from(readings)
    .where(
      and(
        eq(readings.sensor_id, sensorId),
        gte(readings.timestamp, latest - historyMs(horizon)),
        isNotNull(column),
      ),
    )
    .orderBy(desc(readings.timestamp))
    .limit(MAX_HISTORY_ROWS)
  const points: Point[] = []
  for (let i = rows.length - 1; i >= 0; i--) {
    const { t, x } = rows[i]!
    if (x !== null) points.push({ t, x: Number(x) })
  }
  return points
}

/** Computes a pending prediction and stores it completed, or failed with the reason. */
export async function computePrediction(services: Services, id: number) {
  const [row] = await services.db.read.select().from(predictions).where(eq(predictions.id, id))
  if (!row || row.status !== 'pending') return
  const history = await loadHistory(services, row.sensor_id, row.variable, row.horizon_minutes)
  let outcome
  try {
    outcome = forecastReadings(history, row.horizon_minutes, boundsOf(row.variable))
  } catch (error) {
    outcome = { ok: false as const, reason: `The forecast could not be computed: ${String(error)}` }
  }
  const now = Date.now()
  const values = outcome.ok
    ? {
        status: 'completed',
        model: outcome.selection.chosen,
        forecast: outcome.points.map((p) => ({
          timestamp: iso(p.t),
          value: round(p.value),
          lower: round(p.lower),
          upper: round(p.upper),
        })),
        metrics: metricsOf(outcome, history),
        reason: null,
      }
    : { status: 'failed', model: null, forecast: null, metrics: null, reason: outcome.reason }
  await services.emitter.transact(async (tx, emit) => {
    const [current] = await tx
      .select({ status: predictions.status })
      .from(predictions)
      .where(eq(predictions.id, id))
    if (current?.status !== 'pending') return
    await updateOne(
      tx,
      emit,
      predictionResource,
      id,
      { ...values, completed_at: now, updated_at: now },
      'prediction_completed',
    )
  })
}

const round = (x: number) => Math.round(x * 1000) / 1000

function metricsOf(
  outcome: Extract<ReturnType<typeof forecastReadings>, { ok: true }>,
  history: Point[],
) {
  const { selection } = outcome
  const models = Object.fromEntries(
    Object.entries(selection.evaluations).map(([name, e]) => [
      name,
      e.skipped
        ? { skipped: e.skipped }
        : { holdout_mae: round(e.mae!), holdout_rmse: round(e.rmse!), params: e.params },
    ]),
  )
  const chosen = selection.evaluations[selection.chosen].mae!
  const naive = selection.evaluations.naive.mae!
  return {
    model: selection.chosen,
    holdout_mae: round(chosen),
    naive_holdout_mae: round(naive),
    improvement_over_naive: naive > 0 ? round(1 - chosen / naive) : 0,
    models,
    holdout_origins: selection.origins,
    step_minutes: outcome.stepMinutes,
    season_points: outcome.season,
    history_points: outcome.used,
    history_readings: history.length,
    history_from: iso(history[0]!.t),
    history_to: iso(history[history.length - 1]!.t),
    fitted_params: selection.fit.params,
    residual_sd: round(selection.fit.sigma),
    interval: '95% prediction interval from the model equations',
  }
}

export const deletePrediction = ({ emitter }: Services, id: number) =>
  emitter.transact((tx, emit) => deleteOne(tx, emit, predictionResource, id))

/**
 * Queues the predictions a stopped instance left pending and, with PREDICTION_INTERVAL_SECONDS set,
 * re-forecasts every active sensor variable (a reading within the last interval, at least an hour).
 */
export async function startForecasting(services: Services) {
  const { db, intelligence } = services
  const pending = await db.read
    .select({ id: predictions.id })
    .from(predictions)
    .where(eq(predictions.status, 'pending'))
    .orderBy(asc(predictions.id))
  for (const { id } of pending) intelligence.jobs.push(() => computePrediction(services, id))
  const { predictionIntervalSeconds: seconds, predictionHorizonMinutes: horizon } =
    intelligence.options
  if (seconds > 0)
    intelligence.every(seconds, () => forecastActiveSensors(services, seconds, horizon))
}

export async function forecastActiveSensors(services: Services, seconds: number, horizon: number) {
  const since = Date.now() - Math.max(seconds, 3600) * 1000
  const { db } = services
  const active = await db.read
    .selectDistinct({ sensor_id: readings.sensor_id })
    .from(readings)
    .where(gte(readings.created_at, since))
  if (active.length === 0) return
  const ids = active.map((a) => a.sensor_id)
  const busy = new Set(
    (
      await db.read
        .select({ sensor_id: predictions.sensor_id, variable: predictions.variable })
        .from(predictions)
        .where(and(eq(predictions.status, 'pending'), inArray(predictions.sensor_id, ids)))
    ).map((p) => `${p.sensor_id}:${p.variable}`),
  )
  // Each variable an active sensor measures (the last-value store lists them) that it measured lately.
  const pairs = [...(await latestVariables(db.read, ids))]
    .sort(([a], [b]) => a - b)
    .flatMap(([sensor_id, variables]) => variables.map((variable) => ({ sensor_id, variable })))
  for (const { sensor_id, variable } of pairs) {
    if (busy.has(`${sensor_id}:${variable}`) || services.intelligence.jobs.full) continue
    const value = measurement(db.read, variable)
    const [has] = await db.read
      .select({ id: readings.id })
      .from(readings)
      .where(
        and(eq(readings.sensor_id, sensor_id), gte(readings.created_at, since), isNotNull(value)),
      )
      .limit(1)
    if (!has) continue
    await requestPrediction(services, { sensor_id, variable, horizon_minutes: horizon }).catch(
      () => undefined,
    )
  }
}
