// Sensor intelligence through the real server: anomalies detected while readings are stored, their
// lifecycle, and forecasts computed off the request path, each announced on the right channels.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import { rmSync } from 'node:fs'
import { generate, gaussian, rng, temperatureSpec } from '../scripts/synthetic'
import { ConfigError, loadConfig } from '../src/config'
import { createSensor, settle, startTestServer, tempDir, type TestServer } from './helpers'

const START = Date.UTC(2025, 6, 1)
const MIN = 60_000
const iso = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
const SIGMA = temperatureSpec(START, 1).noise

// Real servers on a shared 2-core machine: Bun's 5 s default (bunfig's timeout is not read) is tight.
setDefaultTimeout(30_000)

let server: TestServer
beforeAll(async () => {
  server = await startTestServer({ ANOMALY_AUTO_RESOLVE_READINGS: '3' })
})
afterAll(() => server.stop())

/** Stores readings of one variable at one per minute from `from`, in batches of 1000. */
async function feed(s: TestServer, sensorId: number, values: number[], from = START) {
  for (let i = 0; i < values.length; i += 1000) {
    const batch = values.slice(i, i + 1000).map((temperatura, k) => ({
      sensor_id: sensorId,
      temperatura,
      timestamp: iso(from + (i + k) * MIN),
    }))
    const res = await s.api('POST', '/api/v1/readings/batch', batch)
    expect(res.status).toBe(201)
  }
}

const anomaliesOf = async (s: TestServer, sensorId: number) =>
  (await s.api('GET', `/api/v1/anomalies?sensor_id=${sensorId}`)).body as any[]

/** One client per channel, each greeted before anything happens. */
async function listeners(s: TestServer, channels: string[]) {
  const clients = await Promise.all(channels.map((channel) => s.ws('/api/v1/ws', { channel })))
  await Promise.all(clients.map((c) => c.connected()))
  return clients
}

const quiet = (n: number, seed = 1) => generate(temperatureSpec(START, n), [], seed).values

describe('anomaly detection on stored readings', () => {
  test('a 10-sigma spike is recorded as an open statistical anomaly and announced as anomaly_detected on anomalies, anomalies:<id>, sensors:<id> and general', async () => {
    const id = await createSensor(server)
    const history = quiet(200)
    await feed(server, id, history)
    expect(await anomaliesOf(server, id)).toEqual([])

    const channels = ['anomalies', `anomalies:${id}`, `sensors:${id}`, 'general']
    const clients = await listeners(server, channels)
    const recent = history.slice(-15).sort((a, b) => a - b)
    const spike = Math.round((recent[7]! + 10 * SIGMA) * 100) / 100
    const res = await server.api('POST', '/api/v1/readings', {
      sensor_id: id,
      temperatura: spike,
      timestamp: iso(START + 200 * MIN),
    })
    expect(res.status).toBe(201)

    const [anomaly] = await anomaliesOf(server, id)
    expect(anomaly).toMatchObject({
      sensor_id: id,
      reading_id: res.body.id,
      variable: 'temperatura',
      value: spike,
      rule: 'statistical',
      kind: 'spike',
      status: 'open',
      count: 1,
      first_seen: iso(START + 200 * MIN),
    })
    expect(['warning', 'minor', 'major', 'critical']).toContain(anomaly.severity)
    expect(anomaly.expected_max).toBeLessThan(spike)
    for (const client of clients) {
      const event = await client.event((m) => m.event_type === 'anomaly_detected')
      expect(event).toMatchObject({
        type: 'entity_event',
        entity_type: 'anomaly',
        entity_id: anomaly.id,
        data: { id: anomaly.id, kind: 'spike', status: 'open' },
      })
      await client.close()
    }
  })

  test('a clean day of readings raises nothing', async () => {
    const id = await createSensor(server)
    await feed(server, id, quiet(1440, 4))
    expect(await anomaliesOf(server, id)).toEqual([])
  })

  test('while an anomaly is open a new hit updates it (count, last value, severity rises) and emits updated instead of opening another', async () => {
    const id = await createSensor(server, { thresholds: { temperatura: { max: 30 } } })
    const [client] = await listeners(server, [`anomalies:${id}`])
    const post = (temperatura: number, minute: number) =>
      server.api('POST', '/api/v1/readings', {
        sensor_id: id,
        temperatura,
        timestamp: iso(START + minute * MIN),
      })
    await post(31, 0)
    const detected = await client!.event((m) => m.event_type === 'anomaly_detected')
    expect(detected.data).toMatchObject({ rule: 'threshold', kind: 'above_max', severity: 'minor' })
    await post(32, 1)
    await post(46, 2)
    const updates = await client!.events(2, (m) => m.event_type === 'updated')
    expect(updates.map((u) => u.entity_id)).toEqual([detected.entity_id, detected.entity_id])

    const list = await anomaliesOf(server, id)
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({
      count: 3,
      value: 46,
      severity: 'critical',
      status: 'open',
      expected_max: 30,
      first_seen: iso(START),
      last_seen: iso(START + 2 * MIN),
    })
    await settle(server, client!, `anomalies:${id}`)
    expect(
      client!.receivedEvents().filter((m) => m.event_type === 'anomaly_detected'),
    ).toHaveLength(1)
    await client!.close()
  })

  test('a threshold rule held for 3 readings raises on the third, and a batch folds its hits into one anomaly', async () => {
    const id = await createSensor(server, {
      thresholds: { temperatura: { max: 30, for_readings: 3 } },
    })
    await feed(server, id, [31, 31])
    expect(await anomaliesOf(server, id)).toEqual([])
    await feed(server, id, [31, 32, 33, 34], START + 2 * MIN)
    const list = await anomaliesOf(server, id)
    expect(list).toHaveLength(1)
    expect(list[0]).toMatchObject({
      count: 4,
      value: 34,
      first_seen: iso(START + 2 * MIN),
    })
    expect(list[0].message).toContain('for 6 readings')
  })

  test('a batch that hits the open anomalies of several sensors updates each once, and announces each with its stored row', async () => {
    const rule = { thresholds: { temperatura: { max: 30 } } }
    const ids = [await createSensor(server, rule), await createSensor(server, rule)]
    const [client] = await listeners(server, ['anomalies'])
    for (const id of ids) await feed(server, id, [31])
    const opened = await client!.events(2, (m) => m.event_type === 'anomaly_detected')
    const batch = [
      { sensor_id: ids[0], temperatura: 32, timestamp: iso(START + MIN) },
      { sensor_id: ids[1], temperatura: 47, timestamp: iso(START + MIN) },
      { sensor_id: ids[0], temperatura: 40, timestamp: iso(START + 2 * MIN) },
    ]
    expect((await server.api('POST', '/api/v1/readings/batch', batch)).status).toBe(201)
    const updates = await client!.events(2, (m) => m.event_type === 'updated')
    expect(updates.map((u) => u.entity_id).sort()).toEqual(opened.map((o) => o.entity_id).sort())
    const [first, second] = await Promise.all(ids.map((id) => anomaliesOf(server, id)))
    expect(first).toMatchObject([{ count: 3, value: 40, last_seen: iso(START + 2 * MIN) }])
    expect(second).toMatchObject([{ count: 2, value: 47, severity: 'critical' }])
    for (const stored of [first![0], second![0]])
      expect(updates.find((u) => u.entity_id === stored.id)!.data).toEqual(stored)
    await settle(server, client!, 'anomalies')
    expect(client!.receivedEvents().filter((m) => m.event_type === 'updated')).toHaveLength(2)
    await client!.close()
  })

  test('sensor type defaults apply to every sensor of that tipo, and a sensor’s own rule replaces them for its variable', async () => {
    const put = await server.api('PUT', '/api/v1/sensor-types/camara-fria/thresholds', {
      temperatura: { min: -25, max: -15 },
    })
    expect(put.status).toBe(200)
    expect(
      (await server.api('GET', '/api/v1/sensor-types/camara-fria/thresholds')).body,
    ).toMatchObject({
      tipo: 'camara-fria',
      thresholds: { temperatura: { min: -25, max: -15 } },
    })
    const plain = await createSensor(server, { tipo: 'camara-fria' })
    const own = await createSensor(server, {
      tipo: 'camara-fria',
      thresholds: { temperatura: { min: -30, max: 0 } },
    })
    await feed(server, plain, [-10])
    await feed(server, own, [-10])
    expect(await anomaliesOf(server, plain)).toMatchObject([
      { kind: 'above_max', expected_max: -15 },
    ])
    expect(await anomaliesOf(server, own)).toEqual([])
    expect((await server.api('DELETE', '/api/v1/sensor-types/camara-fria/thresholds')).status).toBe(
      204,
    )
    expect((await server.api('GET', '/api/v1/sensor-types/camara-fria/thresholds')).status).toBe(
      404,
    )
  })

  test('a threshold rule without bounds, or with min above max, is refused with 422 naming the field', async () => {
    const empty = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
      thresholds: { temperatura: { for_readings: 2 } },
    })
    expect(empty.status).toBe(422)
    expect(empty.body.field).toBe('thresholds.temperatura')
    const upside = await server.api('PUT', '/api/v1/sensor-types/x/thresholds', {
      humedad: { min: 80, max: 20 },
    })
    expect(upside.status).toBe(422)
    expect(upside.body).toMatchObject({
      error: 'validation_error',
      field: 'thresholds.humedad.min',
    })
  })

  test('type thresholds sent as anything but JSON are a 400 and set nothing', async () => {
    const url = '/api/v1/sensor-types/formulario/thresholds'
    const res = await server.api('PUT', url, 'temperatura[max]=30', {
      'content-type': 'application/x-www-form-urlencoded',
    })
    expect(res.status).toBe(400)
    expect(res.body.error).toBe('invalid_body')
    expect((await server.api('GET', url)).status).toBe(404)
  })

  test('a new sensor raises nothing statistical on its first readings (warm-up)', async () => {
    const id = await createSensor(server)
    await feed(server, id, [21, 21.1, 20.9, 21, 95, 21])
    expect(await anomaliesOf(server, id)).toEqual([])
  })
})

describe('the anomaly lifecycle', () => {
  async function openAnomaly() {
    const id = await createSensor(server, { thresholds: { temperatura: { max: 30 } } })
    await feed(server, id, [35])
    const [anomaly] = await anomaliesOf(server, id)
    return { sensor: id, anomaly }
  }

  test('acknowledge then resolve move an anomaly along and emit updated; acknowledging a resolved one is a conflict', async () => {
    const { sensor, anomaly } = await openAnomaly()
    const [client] = await listeners(server, [`anomalies:${sensor}`])
    const ack = await server.api('POST', `/api/v1/anomalies/${anomaly.id}/acknowledge`)
    expect(ack.status).toBe(200)
    expect(ack.body).toMatchObject({ status: 'acknowledged', resolved_at: null })
    expect(ack.body.acknowledged_at).toBeString()
    expect(await client!.event((m) => m.event_type === 'updated')).toMatchObject({
      entity_id: anomaly.id,
      data: { status: 'acknowledged' },
    })

    // Hits keep counting on an acknowledged anomaly rather than opening a new one.
    await feed(server, sensor, [36], START + MIN)
    expect(await anomaliesOf(server, sensor)).toMatchObject([{ status: 'acknowledged', count: 2 }])

    const resolved = await server.api('POST', `/api/v1/anomalies/${anomaly.id}/resolve`)
    expect(resolved.status).toBe(200)
    expect(resolved.body.status).toBe('resolved')
    expect(resolved.body.resolved_at).toBeString()
    await client!.event((m) => m.event_type === 'updated' && m.data.status === 'resolved')

    const again = await server.api('POST', `/api/v1/anomalies/${anomaly.id}/acknowledge`)
    expect(again.status).toBe(409)
    expect(again.body.error).toBe('conflict')
    expect((await server.api('POST', '/api/v1/anomalies/999999/resolve')).status).toBe(404)

    // Once resolved, the next hit opens a new anomaly.
    await feed(server, sensor, [37], START + 2 * MIN)
    const list = await anomaliesOf(server, sensor)
    expect(list.map((a) => a.status).sort()).toEqual(['open', 'resolved'])
    await client!.close()
  })

  test('an open anomaly resolves itself after ANOMALY_AUTO_RESOLVE_READINGS normal readings', async () => {
    const { sensor, anomaly } = await openAnomaly()
    const [client] = await listeners(server, [`anomalies:${sensor}`])
    await feed(server, sensor, [25, 25], START + MIN)
    expect((await anomaliesOf(server, sensor))[0].status).toBe('open')
    await feed(server, sensor, [25], START + 3 * MIN)
    const event = await client!.event((m) => m.event_type === 'updated')
    expect(event).toMatchObject({ entity_id: anomaly.id, data: { status: 'resolved' } })
    expect((await anomaliesOf(server, sensor))[0]).toMatchObject({ status: 'resolved', count: 1 })
    await client!.close()
  })

  test('resolving itself, an acknowledged anomaly keeps acknowledged_at, as POST /resolve does', async () => {
    const { sensor, anomaly } = await openAnomaly()
    const [client] = await listeners(server, [`anomalies:${sensor}`])
    const ack = await server.api('POST', `/api/v1/anomalies/${anomaly.id}/acknowledge`)
    await feed(server, sensor, [25, 25, 25], START + MIN)
    const event = await client!.event((m) => m.data.status === 'resolved')
    expect(event.data).toMatchObject({
      id: anomaly.id,
      acknowledged_at: ack.body.acknowledged_at,
      resolved_at: expect.any(String),
    })
    await client!.close()
  })

  test('listing without filters shows anomalies of every status, and PATCH leaves the fields it does not name', async () => {
    const { sensor, anomaly } = await openAnomaly()
    await server.api('POST', `/api/v1/anomalies/${anomaly.id}/resolve`)
    const patched = await server.api('PATCH', `/api/v1/anomalies/${anomaly.id}`, {
      message: 'revisado',
    })
    expect(patched.body).toMatchObject({
      status: 'resolved',
      severity: anomaly.severity,
      message: 'revisado',
    })
    const all = await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}`)
    expect(all.body.map((a: any) => a.status)).toEqual(['resolved'])
    const humedad = await server.api(
      'GET',
      `/api/v1/anomalies?sensor_id=${sensor}&variable=humedad`,
    )
    expect(humedad.body).toEqual([])
  })
})

describe('detector state', () => {
  test('survives a restart: a spike right after restarting is still caught, with no new warm-up', async () => {
    const dir = tempDir()
    const env = { DATABASE_URL: `sqlite:${join(dir, 'state.db')}` }
    const first = await startTestServer(env)
    const id = await createSensor(first)
    const history = quiet(300, 7)
    await feed(first, id, history)
    await first.stop()

    const second = await startTestServer(env)
    try {
      const res = await second.api('POST', '/api/v1/readings', {
        sensor_id: id,
        temperatura: history.at(-1)! + 3,
        timestamp: iso(START + 300 * MIN),
      })
      expect(res.status).toBe(201)
      expect(await anomaliesOf(second, id)).toMatchObject([
        { kind: 'spike', reading_id: res.body.id },
      ])
    } finally {
      await second.stop()
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('detector state cache', () => {
  test('a transaction rolled back after writing states leaves the detector as the database has it', async () => {
    const id = await createSensor(server)
    await feed(server, id, quiet(50))
    const { db, intelligence } = server.ctx
    await intelligence.states.flush()
    const key = `${id}:temperatura`
    const read = async () =>
      JSON.stringify((await db.transaction((tx) => intelligence.states.take(tx, [id]))).get(key))
    const before = await read()
    expect(JSON.parse(before).n).toBe(50)

    const attempt = db.transaction(async (tx) => {
      const states = await intelligence.states.take(tx, [id])
      intelligence.states.evict(key, tx)
      states.get(key)!.n += 1000
      await intelligence.states.put(tx, states)
      throw new Error('rolled back')
    })
    await expect(attempt).rejects.toThrow('rolled back')
    expect(await read()).toBe(before)
    // And it goes on learning from there.
    await feed(server, id, quiet(5), START + 50 * MIN)
    expect(JSON.parse(await read()).n).toBe(55)
  })
})

describe('predictions', () => {
  test('a request answers 201 pending, then prediction_completed reaches predictions, predictions:<id>, sensors:<id> and general, with a model that beats naive on a trended series', async () => {
    const id = await createSensor(server)
    const rand = rng(11)
    await feed(
      server,
      id,
      Array.from({ length: 400 }, (_, i) => 15 + 0.04 * i + 0.15 * gaussian(rand)),
    )
    const clients = await listeners(server, [
      'predictions',
      `predictions:${id}`,
      `sensors:${id}`,
      'general',
    ])

    const res = await server.api('POST', '/api/v1/predictions', {
      sensor_id: id,
      variable: 'temperatura',
      horizon_minutes: 60,
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ sensor_id: id, status: 'pending', forecast: null })

    for (const client of clients) {
      const created = await client.event((m) => m.entity_type === 'prediction')
      expect(created).toMatchObject({ event_type: 'created', data: { status: 'pending' } })
      const done = await client.event((m) => m.event_type === 'prediction_completed')
      expect(done).toMatchObject({ entity_type: 'prediction', entity_id: res.body.id })
      await client.close()
    }
    const stored = (await server.api('GET', `/api/v1/predictions/${res.body.id}`)).body
    expect(stored).toMatchObject({ status: 'completed', model: 'holt', reason: null })
    expect(stored.forecast).toHaveLength(60)
    expect(Object.keys(stored.forecast[0]).sort()).toEqual(['lower', 'timestamp', 'upper', 'value'])
    expect(stored.forecast[59].timestamp).toBe(iso(START + 459 * MIN))
    expect(stored.metrics.holdout_mae).toBeLessThan(stored.metrics.naive_holdout_mae)
    expect(stored.metrics.models.naive.holdout_mae).toBe(stored.metrics.naive_holdout_mae)
    expect(stored.completed_at).toBeString()
  })

  test('too little history fails with a reason, announced like any outcome, and no forecast', async () => {
    const id = await createSensor(server)
    await feed(server, id, [20, 20.5, 21])
    const [client] = await listeners(server, [`predictions:${id}`])
    const res = await server.api('POST', '/api/v1/predictions', {
      sensor_id: id,
      variable: 'temperatura',
      horizon_minutes: 60,
    })
    expect(res.status).toBe(201)
    const done = await client!.event((m) => m.event_type === 'prediction_completed')
    expect(done.data).toMatchObject({ status: 'failed', forecast: null, model: null })
    expect(done.data.reason).toContain('Not enough history')
    const none = await server.api('POST', '/api/v1/predictions', {
      sensor_id: id,
      variable: 'humedad',
      horizon_minutes: 15,
    })
    const failed = await client!.event(
      (m) => m.event_type === 'prediction_completed' && m.entity_id === none.body.id,
    )
    expect(failed.data.status).toBe('failed')
    expect(failed.data.reason).toContain('0 reading(s)')
    await client!.close()
  })

  test('a prediction for an unknown sensor is refused with 422 and stores nothing', async () => {
    const res = await server.api('POST', '/api/v1/predictions', {
      sensor_id: 987654,
      variable: 'temperatura',
      horizon_minutes: 60,
    })
    expect(res.status).toBe(422)
    expect((await server.api('GET', '/api/v1/predictions?sensor_id=987654')).body).toEqual([])
  })

  test('with PREDICTION_INTERVAL_SECONDS every active sensor is re-forecast without being asked', async () => {
    const scheduled = await startTestServer({
      PREDICTION_INTERVAL_SECONDS: '1',
      PREDICTION_HORIZON_MINUTES: '15',
    })
    try {
      const id = await createSensor(scheduled)
      const [client] = await listeners(scheduled, [`predictions:${id}`])
      await feed(scheduled, id, quiet(120, 3))
      const done = await client!.event((m) => m.event_type === 'prediction_completed', 10_000)
      expect(done.data).toMatchObject({
        sensor_id: id,
        variable: 'temperatura',
        horizon_minutes: 15,
        status: 'completed',
      })
      await client!.close()
    } finally {
      await scheduled.stop()
    }
  })
})

describe('intelligence settings', () => {
  test('have working defaults, and a bad value stops the start naming the variable', () => {
    expect(loadConfig({}).intelligence).toEqual({
      warmupReadings: 30,
      autoResolveReadings: 10,
      predictionIntervalSeconds: 0,
      predictionHorizonMinutes: 60,
      sensorOfflineAfter: 0,
      writeBackSeconds: 1,
    })
    for (const [name, value] of [
      ['DETECTOR_WRITE_BACK_SECONDS', '0'],
      ['SENSOR_OFFLINE_AFTER', '-1'],
      ['SENSOR_OFFLINE_AFTER', '5m'],
      ['ANOMALY_AUTO_RESOLVE_READINGS', 'soon'],
      ['ANOMALY_WARMUP_READINGS', '2'],
      ['PREDICTION_INTERVAL_SECONDS', '-5'],
      ['PREDICTION_HORIZON_MINUTES', '0'],
    ] as const) {
      expect(() => loadConfig({ [name]: value })).toThrow(ConfigError)
      expect(() => loadConfig({ [name]: value })).toThrow(name)
    }
  })
})
