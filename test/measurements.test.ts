// Readings with any named measurements (CONTRACT §7) against a real server: REST single and batch,
// corrections, the WebSocket event data, the variables registry, and every bad input for `values`.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readings, variables } from '../src/db/schema'
import { expectEntityEvent, expectInvalid, expectUnchanged, ISO_Z, rowCount } from './assert'
import { createSensor, settle, startWatchedServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
let sensor: number

beforeAll(async () => {
  ;({ server, general } = await startWatchedServer())
  sensor = await createSensor(server, { tipo: 'calidad_aire' })
})
afterAll(() => server.stop())

const post = (body: unknown) => server.api('POST', '/api/v1/readings', body)
const variableNames = async () =>
  (await server.api('GET', '/api/v1/variables')).body.map((v: { name: string }) => v.name)

describe('a reading with any measurements', () => {
  test('is stored with values, answered and announced with temperatura and humedad null when absent', async () => {
    const body = {
      sensor_id: sensor,
      values: { co2: 415, presion: 1013.25, pm2_5: 3.5e-2, bateria_v: -0.5 },
      timestamp: '2025-07-20T10:30:00Z',
    }
    const res = await post(body)
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      sensor_id: sensor,
      temperatura: null,
      humedad: null,
      values: body.values,
      timestamp: '2025-07-20T10:30:00Z',
      created_at: expect.stringMatching(ISO_Z),
    })
    expect((await server.api('GET', `/api/v1/readings/${res.body.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(
      general,
      'reading',
      'created',
      res.body.id,
      'create_reading',
    )
    expect(event.data).toEqual(res.body)
  })

  test('mixes the original top-level fields with values; values then holds all of them', async () => {
    const res = await post({ sensor_id: sensor, temperatura: 21.5, values: { co2: 600 } })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({
      temperatura: 21.5,
      humedad: null,
      values: { temperatura: 21.5, co2: 600 },
    })
    // The same number at the top level and in values is one measurement.
    const same = await post({ sensor_id: sensor, humedad: 40, values: { humedad: 40, co2: 1 } })
    expect(same.body).toMatchObject({ humedad: 40, values: { humedad: 40, co2: 1 } })
    // temperatura given only in values still fills the top-level field.
    const inside = await post({ sensor_id: sensor, values: { temperatura: -5 } })
    expect(inside.body).toMatchObject({
      temperatura: -5,
      humedad: null,
      values: { temperatura: -5 },
    })
  })

  test('a batch stores readings with different variables in one transaction, one event each', async () => {
    await settle(server, general, 'general')
    const from = general.messages.length
    const items = [
      { sensor_id: sensor, values: { co2: 410, ruido_db: 42 }, timestamp: '2025-07-21T00:00:00Z' },
      { sensor_id: sensor, temperatura: 20, humedad: 50 },
      { sensor_id: sensor, values: { humedad_suelo: 0.31 } },
    ]
    const res = await server.api('POST', '/api/v1/readings/batch', items)
    expect(res.status).toBe(201)
    expect(res.body.map((r: { values: unknown }) => r.values)).toEqual([
      { co2: 410, ruido_db: 42 },
      { temperatura: 20, humedad: 50 },
      { humedad_suelo: 0.31 },
    ])
    await settle(server, general, 'general')
    const events = general.messages
      .slice(from)
      .filter((m) => m.type === 'entity_event' && m.entity_type === 'reading')
    expect(events.map((e) => e.data)).toEqual(res.body)
  })

  test('names that are also names of JavaScript object members are measurements like any other', async () => {
    const values = { constructor: 1, tostring: 2, hasownproperty: 3, valueof: 4 }
    const res = await post({ sensor_id: sensor, values })
    expect(res.status).toBe(201)
    expect(res.body.values).toEqual(values)
    const proto = await post(`{"sensor_id":${sensor},"values":{"__proto__":{"x":1}}}`)
    expectInvalid(proto, 'values.__proto__')
    const rules = await server.api('PATCH', `/api/v1/sensors/${sensor}`, {
      thresholds: { constructor: { max: 0 } },
    })
    expect(rules.body.thresholds).toEqual({ constructor: { max: 0 } })
    expect((await post({ sensor_id: sensor, values: { constructor: 5 } })).status).toBe(201)
    const [anomaly] = (await server.api('GET', `/api/v1/anomalies?sensor_id=${sensor}`)).body
    expect(anomaly).toMatchObject({ variable: 'constructor', kind: 'above_max', value: 5 })
    await server.api('PATCH', `/api/v1/sensors/${sensor}`, { thresholds: null })
  })

  test('registers each new name as a variable (unit null) the moment it is stored, and only then', async () => {
    await post({ sensor_id: sensor, values: { nombre_nuevo_1: 1 } })
    const list = (await server.api('GET', '/api/v1/variables')).body
    expect(list.find((v: { name: string }) => v.name === 'nombre_nuevo_1')).toEqual({
      name: 'nombre_nuevo_1',
      unit: null,
      description: null,
      created_at: expect.stringMatching(ISO_Z),
      updated_at: expect.stringMatching(ISO_Z),
    })
    // A batch refused as a whole registers none of its names.
    const refused = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: sensor, values: { nombre_rechazado: 1 } },
      { sensor_id: 999_999, values: { co2: 1 } },
    ])
    expect(refused.status).toBe(422)
    expect(await variableNames()).not.toContain('nombre_rechazado')
    // And the name is registered once the same reading is stored.
    expect((await post({ sensor_id: sensor, values: { nombre_rechazado: 1 } })).status).toBe(201)
    expect(await variableNames()).toContain('nombre_rechazado')
  })
})

describe('the variables API', () => {
  test('GET lists every variable by name, the original two with their units', async () => {
    const res = await server.api('GET', '/api/v1/variables')
    expect(res.status).toBe(200)
    const names = res.body.map((v: { name: string }) => v.name)
    expect(names).toEqual([...names].sort())
    expect(res.body.find((v: { name: string }) => v.name === 'temperatura')).toMatchObject({
      unit: '°C',
    })
    expect(res.body.find((v: { name: string }) => v.name === 'humedad')).toMatchObject({
      unit: '%',
    })
  })

  test('PUT describes a variable in use (200), registers a new one (201), and announces it on general', async () => {
    await post({ sensor_id: sensor, values: { co2: 500 } })
    const res = await server.api('PUT', '/api/v1/variables/co2', {
      unit: 'ppm',
      description: 'Dióxido de carbono',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ name: 'co2', unit: 'ppm', description: 'Dióxido de carbono' })
    const event = await general.event(
      (m) => m.type === 'system_event' && m.data?.module === 'variables',
    )
    expect(event.data.variable).toEqual(res.body)
    expect((await server.api('GET', '/api/v1/variables')).body).toContainEqual(res.body)

    const fresh = await server.api('PUT', '/api/v1/variables/lux', { unit: 'lx' })
    expect(fresh.status).toBe(201)
    expect(fresh.body).toMatchObject({ name: 'lux', unit: 'lx', description: null })
    // The whole description: a field left out is cleared.
    const cleared = await server.api('PUT', '/api/v1/variables/co2', { unit: 'ppm' })
    expect(cleared.body).toMatchObject({ unit: 'ppm', description: null })
  })

  test('a bad name or body is a 422 naming the field and changes nothing', async () => {
    await server.api('PUT', '/api/v1/variables/ruido', { unit: 'dB', description: 'Ruido' })
    await expectUnchanged(server, variables, async () => {
      for (const name of ['Ruido', '2x', 'a-b', 'x'.repeat(64), '_x'])
        expectInvalid(await server.api('PUT', `/api/v1/variables/${name}`, { unit: 'x' }), 'name')
      for (const body of ['11', '[]', '"x"', 'null'])
        expect((await server.api('PUT', '/api/v1/variables/ruido', body)).status).toBe(422)
      expectInvalid(
        await server.api('PUT', '/api/v1/variables/ruido', { unit: 'x'.repeat(33) }),
        'unit',
      )
      expectInvalid(await server.api('PUT', '/api/v1/variables/ruido', { unit: 5 }), 'unit')
      expectInvalid(
        await server.api('PUT', '/api/v1/variables/ruido', { description: 'a\u0000b' }),
        'description',
      )
    })
    expect((await server.api('GET', '/api/v1/variables')).body).toContainEqual(
      expect.objectContaining({ name: 'ruido', unit: 'dB', description: 'Ruido' }),
    )
  })
})

describe('correcting a reading', () => {
  test('PATCH sets named measurements, removes those sent as null and keeps the rest', async () => {
    const { body: reading } = await post({
      sensor_id: sensor,
      temperatura: 20,
      values: { co2: 400, presion: 1000 },
    })
    const res = await server.api('PATCH', `/api/v1/readings/${reading.id}`, {
      values: { co2: 420, presion: null, voc: 7 },
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      temperatura: 20,
      values: { temperatura: 20, co2: 420, voc: 7 },
    })
    expect(res.body.values).not.toHaveProperty('presion')
    const removed = await server.api('PATCH', `/api/v1/readings/${reading.id}`, {
      temperatura: null,
    })
    expect(removed.body).toMatchObject({ temperatura: null, values: { co2: 420, voc: 7 } })
    const event = await expectEntityEvent(
      general,
      'reading',
      'updated',
      reading.id,
      'update_reading',
    )
    expect(event.data).toBeDefined()
  })

  test('PUT replaces every measurement', async () => {
    const { body: reading } = await post({ sensor_id: sensor, values: { co2: 400, presion: 1000 } })
    const res = await server.api('PUT', `/api/v1/readings/${reading.id}`, {
      sensor_id: sensor,
      humedad: 55,
      values: { voc: 3 },
      timestamp: '2025-08-01T00:00:00Z',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      temperatura: null,
      humedad: 55,
      values: { humedad: 55, voc: 3 },
    })
    expect(Object.keys(res.body.values).sort()).toEqual(['humedad', 'voc'])
  })

  test('PATCH and PUT register a name they bring for the first time, as ingest does', async () => {
    const { body: reading } = await post({ sensor_id: sensor, values: { co2: 400 } })
    expect(await variableNames()).not.toContain('corregido_patch')
    const patched = await server.api('PATCH', `/api/v1/readings/${reading.id}`, {
      values: { corregido_patch: 1 },
    })
    expect(patched.status).toBe(200)
    expect(await variableNames()).toContain('corregido_patch')
    const replaced = await server.api('PUT', `/api/v1/readings/${reading.id}`, {
      sensor_id: sensor,
      values: { corregido_put: 2 },
      timestamp: '2025-08-01T00:00:00Z',
    })
    expect(replaced.status).toBe(200)
    expect(await variableNames()).toContain('corregido_put')
  })
})

describe('bad measurements', () => {
  test('each is a 422 naming the field; nothing is stored, no event and no variable is added', async () => {
    const cases: [unknown, string][] = [
      [{ sensor_id: sensor, values: { CO2: 1 } }, 'values.CO2'],
      [{ sensor_id: sensor, values: { '2co2': 1 } }, 'values.2co2'],
      [{ sensor_id: sensor, values: { 'co-2': 1 } }, 'values.co-2'],
      [{ sensor_id: sensor, values: { _co2: 1 } }, 'values._co2'],
      [{ sensor_id: sensor, values: { ['a'.repeat(64)]: 1 } }, `values.${'a'.repeat(64)}`],
      [{ sensor_id: sensor, values: { '': 1 } }, 'values.'],
      [{ sensor_id: sensor, values: { co2: '415' } }, 'values.co2'],
      [{ sensor_id: sensor, values: { co2: null } }, 'values.co2'],
      [{ sensor_id: sensor, values: { co2: true } }, 'values.co2'],
      [{ sensor_id: sensor, values: { co2: { v: 1 } } }, 'values.co2'],
      [{ sensor_id: sensor, values: [415] }, 'values'],
      [{ sensor_id: sensor, values: 'co2=415' }, 'values'],
      [{ sensor_id: sensor, values: 415 }, 'values'],
      [{ sensor_id: sensor, values: null }, 'values'],
      [{ sensor_id: sensor, values: {} }, 'values'],
      [{ sensor_id: sensor, temperatura: null, values: {} }, 'values'],
      [{ sensor_id: sensor, values: { temperatura: 1000.5 } }, 'values.temperatura'],
      [{ sensor_id: sensor, values: { humedad: -1 } }, 'values.humedad'],
      [{ sensor_id: sensor, temperatura: 20, values: { temperatura: 21 } }, 'values.temperatura'],
      [{ sensor_id: sensor, co2: 415 }, 'co2'],
      [{ sensor_id: sensor, temperatura: 20, presion: 1000 }, 'presion'],
      [
        {
          sensor_id: sensor,
          values: Object.fromEntries([...Array(101).keys()].map((i) => [`v${i}`, i])),
        },
        'values',
      ],
    ]
    const names = await variableNames()
    await expectUnchanged(server, readings, async () => {
      for (const [body, field] of cases) {
        const res = await post(body)
        expectInvalid(res, field)
        expect(res.body.message).not.toContain('undefined')
      }
    })
    expect(await variableNames()).toEqual(names)
  })

  test('a value too large for a double (1e999 in the JSON text) is a 422, not Infinity stored', async () => {
    await expectUnchanged(server, readings, async () => {
      const res = await post(`{"sensor_id":${sensor},"values":{"co2":1e999}}`)
      expectInvalid(res, 'values.co2')
      expect(res.body.message).toContain('finite')
      const low = await post(`{"sensor_id":${sensor},"values":{"co2":-1e999}}`)
      expectInvalid(low, 'values.co2')
    })
  })

  test('in a batch the item is named ([3].values.co2) and none of the batch is stored', async () => {
    const good = { sensor_id: sensor, values: { co2: 400 } }
    const cases: [unknown[], string][] = [
      [[good, good, good, { sensor_id: sensor, values: { co2: 'x' } }], '[3].values.co2'],
      [[good, { sensor_id: sensor, values: { Temp: 1 } }], '[1].values.Temp'],
      [[{ sensor_id: sensor, values: {} }, good], '[0].values'],
      [[good, { sensor_id: sensor, values: [1, 2] }], '[1].values'],
      [[good, { sensor_id: sensor, pm10: 3 }], '[1].pm10'],
    ]
    await settle(server, general, 'general')
    const from = general.messages.length
    await expectUnchanged(server, readings, async () => {
      for (const [body, field] of cases)
        expectInvalid(await server.api('POST', '/api/v1/readings/batch', body), field)
      const huge = await server.api(
        'POST',
        '/api/v1/readings/batch',
        `[{"sensor_id":${sensor},"values":{"co2":1}},{"sensor_id":${sensor},"values":{"co2":1e400}}]`,
      )
      expectInvalid(huge, '[1].values.co2')
    })
    await settle(server, general, 'general')
    expect(general.messages.slice(from).filter((m) => m.type === 'entity_event')).toEqual([])
  })

  test('PATCH and PUT refuse the same, and a patch that would leave no measurement', async () => {
    const { body: reading } = await post({ sensor_id: sensor, values: { co2: 400 } })
    const url = `/api/v1/readings/${reading.id}`
    await expectUnchanged(server, readings, async () => {
      expectInvalid(await server.api('PATCH', url, { values: { CO2: 1 } }), 'values.CO2')
      expectInvalid(await server.api('PATCH', url, { values: { co2: 'x' } }), 'values.co2')
      expectInvalid(await server.api('PATCH', url, { values: { co2: null } }), 'values')
      expectInvalid(await server.api('PATCH', url, { values: [1] }), 'values')
      expectInvalid(await server.api('PATCH', url, { ozono: 1 }), 'ozono')
      expectInvalid(
        await server.api('PUT', url, {
          sensor_id: sensor,
          values: { co2: 1e999 },
          timestamp: '2025-01-01T00:00:00Z',
        }),
        'values.co2',
      )
    })
    expect((await server.api('GET', url)).body).toEqual(reading)
  })

  test('a stored reading sent back with PUT (id and created_at included) is taken as it is', async () => {
    const { body: reading } = await post({
      sensor_id: sensor,
      temperatura: 18,
      values: { co2: 500 },
    })
    const res = await server.api('PUT', `/api/v1/readings/${reading.id}`, reading)
    expect(res.status).toBe(200)
    expect(res.body).toEqual(reading)
  })
})

test('nothing in this file leaves a reading without a measurement', async () => {
  const rows = await server.ctx.db.read.select({ values: readings.values }).from(readings)
  expect(rows.length).toBe(await rowCount(server, readings))
  for (const row of rows) expect(Object.keys(row.values).length).toBeGreaterThan(0)
  expect(await rowCount(server, variables)).toBeGreaterThan(2)
})
