// Everything that reads measurements follows any variable, with no configuration first: threshold rules
// (per sensor and per type, for variables not seen yet too), the statistical detector with a warm-up of
// its own per variable, forecasts of that variable's history, and anomalies naming it.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { sensorTypeThresholds } from '../src/db/schema'
import { expectEntityEvent, expectInvalid, expectUnchanged } from './assert'
import { createSensor, startWatchedServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

const START = Date.UTC(2025, 6, 1)
const MIN = 60_000
const WARMUP = 20
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')

let server: TestServer
let general: WsClient
beforeAll(async () => {
  ;({ server, general } = await startWatchedServer({
    ANOMALY_WARMUP_READINGS: String(WARMUP),
    ANOMALY_AUTO_RESOLVE_READINGS: '3',
  }))
})
afterAll(() => server.stop())

/** Stores one reading a minute from `from`, each with the measurements `at(i)` gives. */
async function feed(
  sensor: number,
  count: number,
  at: (i: number) => Record<string, number>,
  from = START,
) {
  const batch = Array.from({ length: count }, (_, i) => ({
    sensor_id: sensor,
    values: at(i),
    timestamp: iso(from + i * MIN),
  }))
  const res = await server.api('POST', '/api/v1/readings/batch', batch)
  expect(res.status).toBe(201)
  return res.body as { id: number }[]
}

const anomaliesOf = async (sensor: number) =>
  (await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}`)).body as any[]

/** A steady, slightly noisy series around `level` (deterministic). */
const noisy = (level: number, i: number) => Math.round((level + Math.sin(i * 1.7) * 2) * 100) / 100

describe('threshold rules for any variable', () => {
  test('a sensor rule on a variable it has never sent is kept, returned, and applied once readings arrive', async () => {
    const res = await server.api('POST', '/api/v1/sensors', {
      tipo: 'aire',
      modelo: 'SCD30',
      thresholds: { co2: { max: 1000, for_readings: 2 }, pm2_5: { max: 25 } },
    })
    expect(res.status).toBe(201)
    expect(res.body.thresholds).toEqual({
      co2: { max: 1000, for_readings: 2 },
      pm2_5: { max: 25 },
    })
    const sensor = res.body.id
    expect((await server.api('GET', `/api/v1/sensors/${sensor}`)).body.thresholds).toEqual(
      res.body.thresholds,
    )
    await feed(sensor, 3, (i) => ({ co2: [900, 1200, 1300][i]! }))
    const [anomaly] = await anomaliesOf(sensor)
    expect(anomaly).toMatchObject({
      variable: 'co2',
      rule: 'threshold',
      kind: 'above_max',
      value: 1300,
      expected_max: 1000,
      status: 'open',
    })
    const event = await expectEntityEvent(
      general,
      'anomaly',
      'anomaly_detected',
      anomaly.id,
      'create_anomaly',
    )
    expect(event.data).toMatchObject({ variable: 'co2', value: 1300 })
  })

  test('type defaults name any variable, are kept for variables no reading has carried, and apply to that tipo', async () => {
    const rules = { co2: { max: 800 }, radon: { max: 100, for_seconds: 60 } }
    const put = await server.api('PUT', '/api/v1/sensor-types/aula/thresholds', rules)
    expect(put.status).toBe(200)
    expect(put.body.thresholds).toEqual(rules)
    expect(
      (await server.api('GET', '/api/v1/sensor-types/aula/thresholds')).body.thresholds,
    ).toEqual(rules)
    const sensor = await createSensor(server, { tipo: 'aula' })
    await feed(sensor, 2, (i) => ({ co2: [700, 900][i]!, temperatura: 21 }))
    expect(await anomaliesOf(sensor)).toMatchObject([
      { variable: 'co2', kind: 'above_max', value: 900 },
    ])
  })

  test('a type rule set that is not an object of rules is a 422 and changes nothing (it used to wipe the rules)', async () => {
    const url = '/api/v1/sensor-types/laboratorio/thresholds'
    const rules = { temperatura: { min: 15, max: 25 }, co2: { max: 900 } }
    expect((await server.api('PUT', url, rules)).status).toBe(200)
    const before = (await server.api('GET', url)).body
    const cases: [string, string][] = [
      ['11', 'thresholds'],
      ['null', 'thresholds'],
      ['[]', 'thresholds'],
      ['"x"', 'thresholds'],
      ['true', 'thresholds'],
      ['[{"co2":{"max":1}}]', 'thresholds'],
      ['{"CO2":{"max":1}}', 'thresholds.CO2'],
      ['{"co2":5}', 'thresholds.co2'],
      ['{"co2":[]}', 'thresholds.co2'],
      ['{"co2":{"max":"alto"}}', 'thresholds.co2.max'],
      ['{"co2":{"maximo":1}}', 'thresholds.co2.maximo'],
      ['{"co2":{"max":1,"for_readings":0}}', 'thresholds.co2.for_readings'],
      ['{"co2":{"max":1,"for_seconds":1.5}}', 'thresholds.co2.for_seconds'],
      ['{"co2":{"max":2e6}}', 'thresholds.co2.max'],
      ['{"co2":{}}', 'thresholds.co2'],
      ['{"co2":{"min":5,"max":1}}', 'thresholds.co2.min'],
    ]
    await expectUnchanged(server, sensorTypeThresholds, async () => {
      for (const [body, field] of cases) expectInvalid(await server.api('PUT', url, body), field)
    })
    expect((await server.api('GET', url)).body).toEqual(before)
  })

  test('a sensor’s thresholds follow the same rules on create, PUT and PATCH', async () => {
    const sensor = await createSensor(server, { thresholds: { co2: { max: 1 } } })
    const url = `/api/v1/sensors/${sensor}`
    const before = (await server.api('GET', url)).body
    for (const thresholds of [
      11,
      [],
      'x',
      { 'co 2': { max: 1 } },
      { co2: 3 },
      { co2: { mx: 1 } },
    ]) {
      const field = (await server.api('PATCH', url, { thresholds })).body.field
      expect(field).toStartWith('thresholds')
      expect((await server.api('PUT', url, { tipo: 't', modelo: 'm', thresholds })).status).toBe(
        422,
      )
      expect(
        (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm', thresholds }))
          .status,
      ).toBe(422)
    }
    expect((await server.api('GET', url)).body).toEqual(before)
    // null still clears them, as before.
    expect((await server.api('PATCH', url, { thresholds: null })).body.thresholds).toBeNull()
  })
})

describe('the statistical detector on any variable', () => {
  test('each variable of a sensor warms up on its own: a spike in a new variable is quiet at first, found once that variable is warm', async () => {
    const sensor = await createSensor(server, { tipo: 'estacion' })
    // temperatura is long warm when presion first appears.
    await feed(sensor, 60, (i) => ({ temperatura: noisy(20, i) }))
    const from = START + 60 * MIN
    const early = Array.from({ length: WARMUP - 5 }, (_, i) => noisy(1013, i))
    early[WARMUP - 6] = 1100
    await feed(
      sensor,
      early.length,
      (i) => ({ presion: early[i]!, temperatura: noisy(20, 60 + i) }),
      from,
    )
    expect(await anomaliesOf(sensor)).toEqual([])

    const next = from + early.length * MIN
    await feed(sensor, 40, (i) => ({ presion: noisy(1013, i + 100) }), next)
    const spikeAt = next + 40 * MIN
    const res = await server.api('POST', '/api/v1/readings', {
      sensor_id: sensor,
      values: { presion: 5000 },
      timestamp: iso(spikeAt),
    })
    expect(res.status).toBe(201)
    const anomalies = await anomaliesOf(sensor)
    expect(anomalies).toMatchObject([
      {
        variable: 'presion',
        rule: 'statistical',
        kind: 'spike',
        value: 5000,
        reading_id: res.body.id,
      },
    ])
  })
})

describe('forecasts of any variable', () => {
  test('a prediction of a variable reads that variable’s history only', async () => {
    const sensor = await createSensor(server, { tipo: 'suelo' })
    // Five hours of minute readings; humedad_suelo in every one, temperatura in every tenth.
    await feed(sensor, 300, (i) => ({
      humedad_suelo: 30 + 0.01 * i + 0.3 * Math.sin(i / 7),
      ...(i % 10 === 0 ? { temperatura: 100 } : {}),
    }))
    const pending = await server.api('POST', '/api/v1/predictions', {
      sensor_id: sensor,
      variable: 'humedad_suelo',
      horizon_minutes: 60,
    })
    expect(pending.status).toBe(201)
    const done = await expectEntityEvent(
      general,
      'prediction',
      'prediction_completed',
      pending.body.id,
      'update_prediction',
    )
    expect(done.data).toMatchObject({ variable: 'humedad_suelo', status: 'completed' })
    expect(done.data.metrics.history_readings).toBe(300)
    for (const point of done.data.forecast) {
      expect(point.value).toBeGreaterThan(30)
      expect(point.value).toBeLessThan(35)
    }
    // A variable the sensor never measured fails with a reason, not an error.
    const none = await server.api('POST', '/api/v1/predictions', {
      sensor_id: sensor,
      variable: 'viento',
      horizon_minutes: 60,
    })
    const failed = await expectEntityEvent(
      general,
      'prediction',
      'prediction_completed',
      none.body.id,
      'update_prediction',
    )
    expect(failed.data).toMatchObject({ status: 'failed', variable: 'viento' })
    expect(failed.data.reason).toContain('0 reading')
  })
})
