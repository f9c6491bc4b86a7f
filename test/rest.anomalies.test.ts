// REST /api/v1/anomalies against a real server: every route, its event, and bad input on each.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { anomalies } from '../src/db/schema'
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
  const res = await server.api('POST', '/api/v1/anomalies', {
    sensor_id: sensorId,
    variable: 'temperatura',
    value: 48.2,
    ...body,
  })
  expect(res.status).toBe(201)
  return res.body
}

/** Bad input must leave the table and the event log as they were. */
const unchanged = (run: () => Promise<void>) => expectUnchanged(server, anomalies, run)

describe('POST /api/v1/anomalies', () => {
  test('records an anomaly with its defaults, answers 201, and emits anomaly_detected', async () => {
    const res = await server.api('POST', '/api/v1/anomalies', {
      sensor_id: sensorId,
      variable: 'temperatura',
      value: 48.2,
    })
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      sensor_id: sensorId,
      reading_id: null,
      variable: 'temperatura',
      value: 48.2,
      severity: 'warning',
      status: 'open',
      rule: 'manual',
      kind: null,
      expected_min: null,
      expected_max: null,
      message: null,
      count: 1,
      first_seen: expect.stringMatching(ISO_Z),
      last_seen: res.body.first_seen,
      resolved_at: null,
      acknowledged_at: null,
      created_at: res.body.first_seen,
      updated_at: res.body.first_seen,
    })
    expect((await server.api('GET', `/api/v1/anomalies/${res.body.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(
      general,
      'anomaly',
      'anomaly_detected',
      res.body.id,
      'create_anomaly',
    )
    expect(event.data).toEqual(res.body)
  })

  test('stores every optional field it is given; resolved ones get resolved_at, acknowledged ones acknowledged_at', async () => {
    const anomaly = await create({
      variable: 'humedad',
      value: 99,
      severity: 'critical',
      status: 'resolved',
      rule: 'threshold',
      expected_min: 20,
      expected_max: 80,
      message: 'Humedad fuera de rango',
    })
    expect(anomaly).toMatchObject({
      variable: 'humedad',
      severity: 'critical',
      status: 'resolved',
      rule: 'threshold',
      expected_min: 20,
      expected_max: 80,
      message: 'Humedad fuera de rango',
      resolved_at: anomaly.created_at,
      acknowledged_at: null,
    })
    const acknowledged = await create({ status: 'acknowledged' })
    expect(acknowledged).toMatchObject({
      status: 'acknowledged',
      acknowledged_at: acknowledged.created_at,
      resolved_at: null,
    })
  })

  test('an anomaly of a sensor that does not exist is a 422 naming sensor_id; nothing is stored', async () => {
    await unchanged(async () => {
      const res = await server.api('POST', '/api/v1/anomalies', {
        sensor_id: 31337,
        variable: 'temperatura',
        value: 1,
      })
      expectInvalid(res, 'sensor_id', 'unknown_reference')
      expect(res.body.message).toContain('Sensor 31337 does not exist')
    })
  })

  test('each schema break is a 422 naming the field; nothing is stored', async () => {
    const ok = { sensor_id: sensorId, variable: 'temperatura', value: 1 }
    await unchanged(async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ variable: 'temperatura', value: 1 }, 'sensor_id'],
        [{ ...ok, sensor_id: -1 }, 'sensor_id'],
        [{ ...ok, sensor_id: 2 ** 60 }, 'sensor_id'],
        [{ sensor_id: sensorId, value: 1 }, 'variable'],
        [{ ...ok, variable: 'Presión' }, 'variable'],
        [{ sensor_id: sensorId, variable: 'humedad' }, 'value'],
        [{ ...ok, value: 'alto' }, 'value'],
        [{ ...ok, value: 2e9 }, 'value'],
        [{ ...ok, severity: 'apocalyptic' }, 'severity'],
        [{ ...ok, status: 'closed' }, 'status'],
        [{ ...ok, rule: '' }, 'rule'],
        [{ ...ok, expected_min: -2e9 }, 'expected_min'],
        [{ ...ok, message: 'x'.repeat(2001) }, 'message'],
      ]
      for (const [body, field] of cases)
        expectInvalid(await server.api('POST', '/api/v1/anomalies', body), field)
      const enumError = await server.api('POST', '/api/v1/anomalies', { ...ok, severity: 'bad' })
      expect(enumError.body.message).toContain('warning, minor, major, critical')
      expectError(await server.api('POST', '/api/v1/anomalies', 'value=1'), 400, 'invalid_body')
    })
  })
})

describe('GET /api/v1/anomalies', () => {
  let sensor: number
  let made: { id: number }[]
  beforeAll(async () => {
    sensor = await createSensor(server)
    made = [
      await create({ sensor_id: sensor, severity: 'minor' }),
      await create({ sensor_id: sensor, variable: 'humedad', severity: 'major' }),
      await create({ sensor_id: sensor, severity: 'major', status: 'acknowledged' }),
    ]
  })
  const ids = (body: { id: number }[]) => body.map((a) => a.id).sort((a, b) => a - b)

  test('filters by sensor_id with X-Total-Count, paged by limit and offset', async () => {
    const res = await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}`)
    expect(res.status).toBe(200)
    expect(ids(res.body)).toEqual(ids(made))
    expect(res.headers.get('x-total-count')).toBe('3')
    const first = await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}&limit=2`)
    const rest = await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}&limit=2&offset=2`)
    expect(first.body).toHaveLength(2)
    expect(rest.body).toHaveLength(1)
    expect(ids([...first.body, ...rest.body])).toEqual(ids(made))
    expect(rest.headers.get('x-total-count')).toBe('3')
    const all = await server.api('GET', '/api/v1/anomalies')
    expect(all.headers.get('x-total-count')).toBe(String(await rowCount(server, anomalies)))
  })

  test('filters by status, severity and variable', async () => {
    const q = (query: string) => server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}&${query}`)
    expect(ids((await q('severity=major')).body)).toEqual(ids(made.slice(1)))
    expect(ids((await q('status=acknowledged')).body)).toEqual([made[2]!.id])
    expect(ids((await q('variable=humedad')).body)).toEqual([made[1]!.id])
    expect(ids((await q('status=open&severity=major')).body)).toEqual([made[1]!.id])
    expect((await q('severity=critical')).body).toEqual([])
  })

  test('from and to select anomalies seen within the range', async () => {
    const q = (query: string) => server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}&${query}`)
    expect(ids((await q('from=2000-01-01T00:00:00Z&to=2100-01-01T00:00:00Z')).body)).toEqual(
      ids(made),
    )
    expect((await q('from=2100-01-01T00:00:00Z')).body).toEqual([])
    expect((await q('to=2000-01-01T00:00:00Z')).body).toEqual([])
  })

  test('a bad query parameter is a 422 naming it', async () => {
    for (const [query, field] of [
      ['sensor_id=0', 'sensor_id'],
      ['status=closed', 'status'],
      ['severity=huge', 'severity'],
      ['variable=co-2', 'variable'],
      ['from=2025-02-30T00:00:00Z', 'from'],
      ['to=mañana', 'to'],
      ['limit=0', 'limit'],
    ])
      expectInvalid(await server.api('GET', `/api/v1/anomalies?${query}`), field!)
  })
})

describe('GET /api/v1/anomalies/:id', () => {
  test('answers the anomaly, 404 for an unknown id, 422 for a bad one', async () => {
    const anomaly = await create()
    await expectFoundById(server, '/api/v1/anomalies', 'Anomaly', anomaly)
  })
})

describe('PUT /api/v1/anomalies/:id', () => {
  test('replaces the anomaly, clears optional values left out, and emits updated', async () => {
    const anomaly = await create({ expected_max: 30, message: 'antes', severity: 'major' })
    const res = await server.api('PUT', `/api/v1/anomalies/${anomaly.id}`, {
      sensor_id: sensorId,
      variable: 'humedad',
      value: 12,
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: anomaly.id,
      variable: 'humedad',
      value: 12,
      severity: 'warning',
      status: 'open',
      expected_max: null,
      message: null,
      created_at: anomaly.created_at,
    })
    const event = await expectEntityEvent(
      general,
      'anomaly',
      'updated',
      anomaly.id,
      'update_anomaly',
    )
    expect(event.data).toEqual(res.body)
  })

  test('bad input changes nothing', async () => {
    const anomaly = await create()
    const url = `/api/v1/anomalies/${anomaly.id}`
    const full = { sensor_id: sensorId, variable: 'temperatura', value: 5 }
    await unchanged(async () => {
      expectInvalid(await server.api('PUT', url, { sensor_id: sensorId, value: 5 }), 'variable')
      expectInvalid(
        await server.api('PUT', url, { ...full, sensor_id: 8888 }),
        'sensor_id',
        'unknown_reference',
      )
      expectError(await server.api('PUT', url, '{', {}), 400)
      expectError(await server.api('PUT', '/api/v1/anomalies/8888', full), 404, 'not_found')
    })
    expect((await server.api('GET', url)).body).toEqual(anomaly)
  })
})

describe('PATCH /api/v1/anomalies/:id', () => {
  test('resolving sets resolved_at, reopening clears it, and each emits updated', async () => {
    const anomaly = await create()
    const resolved = await server.api('PATCH', `/api/v1/anomalies/${anomaly.id}`, {
      status: 'resolved',
    })
    expect(resolved.status).toBe(200)
    expect(resolved.body).toMatchObject({
      ...anomaly,
      status: 'resolved',
      resolved_at: expect.stringMatching(ISO_Z),
      updated_at: expect.any(String),
    })
    const event = await expectEntityEvent(
      general,
      'anomaly',
      'updated',
      anomaly.id,
      'update_anomaly',
    )
    expect(event.data).toEqual(resolved.body)
    const reopened = await server.api('PATCH', `/api/v1/anomalies/${anomaly.id}`, {
      status: 'open',
    })
    expect(reopened.body.resolved_at).toBeNull()
    const severity = await server.api('PATCH', `/api/v1/anomalies/${anomaly.id}`, {
      severity: 'critical',
    })
    expect(severity.body).toMatchObject({ status: 'open', severity: 'critical', resolved_at: null })
  })

  test('leaves the enum fields it does not name as they were', async () => {
    const anomaly = await create({ variable: 'humedad', severity: 'major', status: 'acknowledged' })
    const res = await server.api('PATCH', `/api/v1/anomalies/${anomaly.id}`, { value: 50.5 })
    expect(res.body).toMatchObject({
      variable: 'humedad',
      severity: 'major',
      status: 'acknowledged',
      value: 50.5,
    })
  })

  test('bad input changes nothing', async () => {
    const anomaly = await create()
    const url = `/api/v1/anomalies/${anomaly.id}`
    await unchanged(async () => {
      expectError(await server.api('PATCH', url, {}), 422, 'validation_error')
      expectInvalid(await server.api('PATCH', url, { status: 'done' }), 'status')
      expectInvalid(
        await server.api('PATCH', url, { sensor_id: 9191 }),
        'sensor_id',
        'unknown_reference',
      )
      expectError(
        await server.api('PATCH', url, 'status=resolved', { 'content-type': 'text/plain' }),
        400,
      )
      expectError(await server.api('PATCH', '/api/v1/anomalies/9191', { status: 'open' }), 404)
    })
    expect((await server.api('GET', url)).body).toEqual(anomaly)
  })
})

describe('status changes', () => {
  type Anomaly = Record<string, any>
  const url = (a: Anomaly) => `/api/v1/anomalies/${a.id}`
  const post = (a: Anomaly, action: string) => server.api('POST', `${url(a)}/${action}`)

  /** An anomaly brought to `status` through the dedicated endpoints (a resolved one was acknowledged first). */
  async function anomalyIn(status: string) {
    const anomaly = await create()
    if (status === 'open') return anomaly
    expect((await post(anomaly, 'acknowledge')).status).toBe(200)
    if (status === 'acknowledged') return (await server.api('GET', url(anomaly))).body
    expect((await post(anomaly, 'resolve')).status).toBe(200)
    return (await server.api('GET', url(anomaly))).body
  }

  /** What a call did to `before`: its answer, each timestamp kept, stamped or null, and whether it emitted. */
  async function outcome(
    before: Anomaly,
    call: () => ReturnType<typeof server.api>,
  ): Promise<Record<string, unknown>> {
    const seq = server.ctx.realtime.publisher.lastSeq
    const res = await call()
    const emitted = server.ctx.realtime.publisher.lastSeq !== seq
    const stored = (await server.api('GET', url(before))).body
    if (res.status !== 200) {
      expect(stored).toEqual(before)
      return { code: res.status, error: res.body.error, emitted }
    }
    expect(stored).toEqual(res.body)
    const stamp = (field: string) =>
      res.body[field] === null ? 'null' : res.body[field] === before[field] ? 'kept' : 'stamped'
    return {
      code: 200,
      status: res.body.status,
      acknowledged_at: stamp('acknowledged_at'),
      resolved_at: stamp('resolved_at'),
      emitted,
    }
  }

  const done = (status: string, acknowledged_at: string, resolved_at: string) => ({
    code: 200,
    status,
    acknowledged_at,
    resolved_at,
    emitted: true,
  })
  const unchangedAs = (status: string, acknowledged_at: string, resolved_at: string) => ({
    ...done(status, acknowledged_at, resolved_at),
    emitted: false,
  })
  const RULES: [from: string, to: 'acknowledge' | 'resolve', expected: Record<string, unknown>][] =
    [
      ['open', 'acknowledge', done('acknowledged', 'stamped', 'null')],
      ['open', 'resolve', done('resolved', 'null', 'stamped')],
      ['acknowledged', 'acknowledge', unchangedAs('acknowledged', 'kept', 'null')],
      ['acknowledged', 'resolve', done('resolved', 'kept', 'stamped')],
      ['resolved', 'acknowledge', { code: 409, error: 'conflict', emitted: false }],
      ['resolved', 'resolve', unchangedAs('resolved', 'kept', 'kept')],
    ]
  const STATUS = { acknowledge: 'acknowledged', resolve: 'resolved' } as const

  for (const [from, action, expected] of RULES)
    test(`from ${from}, POST /${action} and PATCH {"status":"${STATUS[action]}"} have the same effect`, async () => {
      const viaEndpoint = await anomalyIn(from)
      const viaPatch = await anomalyIn(from)
      expect(await outcome(viaEndpoint, () => post(viaEndpoint, action))).toEqual(expected)
      expect(
        await outcome(viaPatch, () =>
          server.api('PATCH', url(viaPatch), { status: STATUS[action] }),
        ),
      ).toEqual(expected)
    })

  test('PATCH {"status":"open"} reopens an anomaly and clears both timestamps; repeating it changes nothing', async () => {
    const anomaly = await anomalyIn('resolved')
    const reopen = () => server.api('PATCH', url(anomaly), { status: 'open' })
    expect(await outcome(anomaly, reopen)).toEqual(done('open', 'null', 'null'))
    const reopened = (await server.api('GET', url(anomaly))).body
    expect(await outcome(reopened, reopen)).toEqual(unchangedAs('open', 'null', 'null'))
  })

  test('a PATCH that repeats the status and changes another field keeps the timestamps', async () => {
    const anomaly = await anomalyIn('resolved')
    const res = await server.api('PATCH', url(anomaly), { status: 'resolved', message: 'revisada' })
    expect(res.body).toEqual({ ...anomaly, message: 'revisada', updated_at: expect.any(String) })
    await expectEntityEvent(general, 'anomaly', 'updated', anomaly.id, 'update_anomaly')
  })

  test('PUT changes the status by the same rules', async () => {
    const body = { sensor_id: sensorId, variable: 'temperatura', value: 1 }
    const acknowledged = await anomalyIn('acknowledged')
    const kept = await server.api('PUT', url(acknowledged), { ...body, status: 'acknowledged' })
    expect(kept.body).toMatchObject({
      status: 'acknowledged',
      value: 1,
      acknowledged_at: acknowledged.acknowledged_at,
    })
    const resolved = await anomalyIn('resolved')
    await unchanged(async () => {
      const refused = await server.api('PUT', url(resolved), { ...body, status: 'acknowledged' })
      expectError(refused, 409, 'conflict')
    })
    const reopened = await server.api('PUT', url(resolved), body)
    expect(reopened.body).toMatchObject({
      status: 'open',
      acknowledged_at: null,
      resolved_at: null,
    })
  })
})

describe('DELETE /api/v1/anomalies/:id', () => {
  test('answers 204, emits deleted, and the anomaly is gone', async () => {
    const anomaly = await create()
    await expectDeleted(server, general, '/api/v1/anomalies', 'anomaly', anomaly)
    expectInvalid(await server.api('DELETE', '/api/v1/anomalies/0'), 'id')
  })

  test('deleting the sensor deletes its anomalies', async () => {
    const sensor = await createSensor(server)
    const anomaly = await create({ sensor_id: sensor })
    expect((await server.api('DELETE', `/api/v1/sensors/${sensor}`)).status).toBe(204)
    expectError(await server.api('GET', `/api/v1/anomalies/${anomaly.id}`), 404)
  })
})
