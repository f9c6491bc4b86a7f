// REST /api/v1/predictions against a real server: request and its outcome, list, get, delete; PUT and PATCH are 405.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { predictions } from '../src/db/schema'
import {
  expectDeleted,
  expectEntityEvent,
  expectError,
  expectFoundById,
  expectInvalid,
  expectUnchanged,
  ISO_Z,
  rowCount,
} from './assert'
import { createSensor, startWatchedServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
let sensorId: number

beforeAll(async () => {
  ;({ server, general } = await startWatchedServer())
  sensorId = await createSensor(server)
})
afterAll(() => server.stop())

const create = async (body: Record<string, unknown> = {}) => {
  const res = await server.api('POST', '/api/v1/predictions', {
    sensor_id: sensorId,
    variable: 'temperatura',
    horizon_minutes: 60,
    ...body,
  })
  expect(res.status).toBe(201)
  return res.body
}

/**
 * The forecaster picks up every request right after POST and stores it completed or failed; this waits
 * for that outcome, announced as prediction_completed, and returns the prediction it carries.
 */
const outcome = async (id: number) =>
  (await expectEntityEvent(general, 'prediction', 'prediction_completed', id, 'update_prediction'))
    .data

/** A request whose computation is over, so nothing about it changes any more. */
const settled = async (body: Record<string, unknown> = {}) => outcome((await create(body)).id)

/** Bad input must leave the table and the event log as they were. */
const unchanged = (run: () => Promise<void>) => expectUnchanged(server, predictions, run)

describe('POST /api/v1/predictions', () => {
  test('answers 201 with the request stored pending and emits created, then prediction_completed with the outcome', async () => {
    const body = { sensor_id: sensorId, variable: 'humedad', horizon_minutes: 30 }
    const res = await server.api('POST', '/api/v1/predictions', body)
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      ...body,
      status: 'pending',
      model: null,
      forecast: null,
      metrics: null,
      reason: null,
      completed_at: null,
      created_at: expect.stringMatching(ISO_Z),
      updated_at: res.body.created_at,
    })
    const created = await expectEntityEvent(
      general,
      'prediction',
      'created',
      res.body.id,
      'create_prediction',
    )
    expect(created.data).toEqual(res.body)
    // The sensor has no readings: the forecaster fails the request with a reason, never a made-up forecast.
    const completed = await expectEntityEvent(
      general,
      'prediction',
      'prediction_completed',
      res.body.id,
      'update_prediction',
    )
    expect(completed.seq).toBeGreaterThan(created.seq)
    expect(completed.data).toEqual({
      ...res.body,
      status: 'failed',
      reason: 'Only 0 reading(s) in the history; a forecast needs a history to learn from.',
      completed_at: expect.stringMatching(ISO_Z),
      updated_at: completed.data.completed_at,
    })
    expect(Date.parse(completed.data.completed_at)).toBeGreaterThanOrEqual(
      Date.parse(res.body.created_at),
    )
    expect((await server.api('GET', `/api/v1/predictions/${res.body.id}`)).body).toEqual(
      completed.data,
    )
  })

  test('a prediction for a sensor that does not exist is a 422 naming sensor_id; nothing is stored', async () => {
    await unchanged(async () => {
      const res = await server.api('POST', '/api/v1/predictions', {
        sensor_id: 5150,
        variable: 'temperatura',
        horizon_minutes: 60,
      })
      expectInvalid(res, 'sensor_id', 'unknown_reference')
      expect(res.body.message).toContain('Sensor 5150 does not exist')
    })
  })

  test('each schema break is a 422 naming the field; nothing is stored', async () => {
    const ok = { sensor_id: sensorId, variable: 'temperatura', horizon_minutes: 60 }
    await unchanged(async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ variable: 'temperatura', horizon_minutes: 60 }, 'sensor_id'],
        [{ ...ok, sensor_id: 0 }, 'sensor_id'],
        [{ ...ok, sensor_id: 1e20 }, 'sensor_id'],
        [{ sensor_id: sensorId, horizon_minutes: 60 }, 'variable'],
        [{ ...ok, variable: 'Presión' }, 'variable'],
        [{ sensor_id: sensorId, variable: 'humedad' }, 'horizon_minutes'],
        [{ ...ok, horizon_minutes: 0 }, 'horizon_minutes'],
        [{ ...ok, horizon_minutes: 10_081 }, 'horizon_minutes'],
        [{ ...ok, horizon_minutes: 1.5 }, 'horizon_minutes'],
        [{ ...ok, horizon_minutes: 'una hora' }, 'horizon_minutes'],
      ]
      for (const [body, field] of cases)
        expectInvalid(await server.api('POST', '/api/v1/predictions', body), field)
      const range = await server.api('POST', '/api/v1/predictions', { ...ok, horizon_minutes: 0 })
      expect(range.body.message).toContain('greater or equal to 1')
      expectError(await server.api('POST', '/api/v1/predictions', '{]'), 400, 'invalid_body')
    })
  })
})

describe('GET /api/v1/predictions', () => {
  let sensor: number
  let made: { id: number; status: string; created_at: string }[]
  beforeAll(async () => {
    sensor = await createSensor(server)
    // Five hours of minute temperature readings and no humidity: temperatura can be forecast, humedad not.
    const start = Date.UTC(2025, 0, 1)
    const history = Array.from({ length: 300 }, (_, i) => ({
      sensor_id: sensor,
      temperatura: 18 + 0.01 * i + 0.3 * Math.sin(i / 7),
      timestamp: new Date(start + i * 60_000).toISOString(),
    }))
    expect((await server.api('POST', '/api/v1/readings/batch', history)).status).toBe(201)
    made = [
      await settled({ sensor_id: sensor }),
      await settled({ sensor_id: sensor, variable: 'humedad' }),
      await settled({ sensor_id: sensor, horizon_minutes: 120 }),
    ]
    expect(made.map((p) => p.status)).toEqual(['completed', 'failed', 'completed'])
  })
  const ids = (body: { id: number }[]) => body.map((p) => p.id)

  test('filters by sensor_id, newest first, with X-Total-Count', async () => {
    const res = await server.api('GET', `/api/v1/predictions?sensor_id=${sensor}`)
    expect(res.status).toBe(200)
    expect(ids(res.body)).toEqual(ids(made).reverse())
    expect(res.headers.get('x-total-count')).toBe('3')
    const all = await server.api('GET', '/api/v1/predictions')
    expect(all.headers.get('x-total-count')).toBe(String(await rowCount(server, predictions)))
  })

  test('limit and offset page through while X-Total-Count stays the total', async () => {
    const page = await server.api('GET', `/api/v1/predictions?sensor_id=${sensor}&limit=1&offset=1`)
    expect(ids(page.body)).toEqual([made[1]!.id])
    expect(page.headers.get('x-total-count')).toBe('3')
  })

  test('filters by variable and status', async () => {
    const q = (query: string) =>
      server.api('GET', `/api/v1/predictions?sensor_id=${sensor}&${query}`)
    expect(ids((await q('variable=humedad')).body)).toEqual([made[1]!.id])
    expect(ids((await q('variable=temperatura')).body)).toEqual([made[2]!.id, made[0]!.id])
    expect(ids((await q('status=completed')).body)).toEqual([made[2]!.id, made[0]!.id])
    expect(ids((await q('status=failed')).body)).toEqual([made[1]!.id])
    expect((await q('status=pending')).body).toEqual([])
    expect(ids((await q('variable=temperatura&status=failed')).body)).toEqual([])
  })

  test('filters by the time the prediction was requested with from and to', async () => {
    const q = async (query: string) =>
      ids((await server.api('GET', `/api/v1/predictions?sensor_id=${sensor}&${query}`)).body)
    const [first, , last] = made.map((p) => encodeURIComponent(p.created_at))
    // Each request went out after the previous forecast was announced.
    expect(Date.parse(made[2]!.created_at)).toBeGreaterThan(Date.parse(made[0]!.created_at))
    expect(await q(`from=${first}&to=${last}`)).toEqual(ids(made).reverse())
    expect(await q(`from=${last}`)).not.toContain(made[0]!.id)
    expect(await q(`from=${last}`)).toContain(made[2]!.id)
    expect(await q(`to=${first}`)).toContain(made[0]!.id)
    expect(await q(`to=${first}`)).not.toContain(made[2]!.id)
    expect(await q('from=2100-01-01T00:00:00Z')).toEqual([])
    expect(await q('to=2000-01-01T00:00:00Z')).toEqual([])
  })

  test('a bad query parameter is a 422 naming it', async () => {
    for (const [query, field] of [
      ['sensor_id=-1', 'sensor_id'],
      ['variable=Viento', 'variable'],
      ['status=done', 'status'],
      ['from=2025-02-30T00:00:00Z', 'from'],
      ['to=yesterday', 'to'],
      ['limit=5000', 'limit'],
      ['offset=x', 'offset'],
    ])
      expectInvalid(await server.api('GET', `/api/v1/predictions?${query}`), field!)
  })
})

describe('GET /api/v1/predictions/:id', () => {
  test('answers the prediction, 404 for an unknown id, 422 for a bad one', async () => {
    const prediction = await settled()
    await expectFoundById(server, '/api/v1/predictions', 'Prediction', prediction)
  })
})

describe('PUT and PATCH /api/v1/predictions/:id', () => {
  test('answer 405 with the error envelope and change nothing', async () => {
    const prediction = await settled()
    await unchanged(async () => {
      for (const method of ['PUT', 'PATCH']) {
        const res = await server.api(method, `/api/v1/predictions/${prediction.id}`, {
          horizon_minutes: 5,
        })
        expectError(res, 405, 'method_not_allowed')
        expect(res.body.message).toContain('POST /api/v1/predictions')
        expectError(await server.api(method, '/api/v1/predictions/6543', {}), 405)
      }
    })
    expect((await server.api('GET', `/api/v1/predictions/${prediction.id}`)).body).toEqual(
      prediction,
    )
  })
})

describe('DELETE /api/v1/predictions/:id', () => {
  test('answers 204, emits deleted, and the prediction is gone', async () => {
    const prediction = await settled()
    await expectDeleted(server, general, '/api/v1/predictions', 'prediction', prediction)
    expectInvalid(await server.api('DELETE', '/api/v1/predictions/nope'), 'id')
  })

  test('deleting the sensor deletes its predictions', async () => {
    const sensor = await createSensor(server)
    const prediction = await settled({ sensor_id: sensor })
    expect((await server.api('DELETE', `/api/v1/sensors/${sensor}`)).status).toBe(204)
    expectError(await server.api('GET', `/api/v1/predictions/${prediction.id}`), 404)
  })
})
