// REST /api/v1/sensors against a real server: every route, its event, and bad input on each.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { and, eq, isNull, sql } from 'drizzle-orm'
import { readings, sensors } from '../src/db/schema'
import {
  expectDeleted,
  expectEntityEvent,
  expectError,
  expectInvalid,
  expectUnchanged,
  ISO_Z,
  rowCount,
} from './assert'
import { settle, startWatchedServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
let locationId: number

beforeAll(async () => {
  ;({ server, general } = await startWatchedServer())
  locationId = (await server.api('POST', '/api/v1/locations', { nombre: 'Invernadero' })).body.id
})
afterAll(() => server.stop())

/** Bad input must leave the table and the event log as they were. */
const unchanged = (run: () => Promise<void>) => expectUnchanged(server, sensors, run)

const create = async (body: Record<string, unknown> = {}) => {
  const res = await server.api('POST', '/api/v1/sensors', {
    tipo: 'temperatura',
    modelo: 'DHT22',
    ...body,
  })
  expect(res.status).toBe(201)
  return res.body
}

describe('POST /api/v1/sensors', () => {
  test('stores the original body and answers 201 with the stored sensor', async () => {
    const res = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
    })
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      tipo: 'temperatura',
      modelo: 'DHT22',
      nombre: null,
      location_id: null,
      thresholds: null,
      status: 'unknown',
      last_seen: null,
      offline_after: null,
      created_at: expect.stringMatching(ISO_Z),
      updated_at: res.body.created_at,
    })
    expect((await server.api('GET', `/api/v1/sensors/${res.body.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(
      general,
      'sensor',
      'created',
      res.body.id,
      'create_sensor',
    )
    expect(event.data).toEqual(res.body)
  })

  test('stores the optional name and location', async () => {
    const sensor = await create({ nombre: 'Sala norte', location_id: locationId })
    expect(sensor).toMatchObject({ nombre: 'Sala norte', location_id: locationId })
    expect((await server.api('GET', `/api/v1/sensors/${sensor.id}`)).body).toEqual(sensor)
  })

  test('a location_id that does not exist is a 422 naming it, and nothing is stored', async () => {
    await unchanged(async () => {
      const res = await server.api('POST', '/api/v1/sensors', {
        tipo: 'humedad',
        modelo: 'DHT11',
        location_id: 987654,
      })
      expectInvalid(res, 'location_id', 'unknown_reference')
      expect(res.body.message).toContain('Location 987654 does not exist')
    })
  })

  test('a body that is not JSON is a 400, whatever its content type', async () => {
    await unchanged(async () => {
      for (const [type, body] of [
        ['application/json', '{"tipo": "temperatura", '],
        ['application/json', ''],
        ['text/plain', 'tipo=temperatura'],
        ['application/x-www-form-urlencoded', 'tipo=temperatura&modelo=DHT22'],
      ] as const) {
        const res = await server.api('POST', '/api/v1/sensors', body, { 'content-type': type })
        expectError(res, 400, 'invalid_body')
      }
    })
  })

  test('JSON sent under another content type (what a page of another site may send) is a 415 and stores nothing', async () => {
    await unchanged(async () => {
      // fetch labels a string body text/plain, as a cross-site page's fetch or form would.
      const res = await fetch(`${server.base}/api/v1/sensors`, {
        method: 'POST',
        body: JSON.stringify({ tipo: 'temperatura', modelo: 'DHT22' }),
      })
      expectError(
        { status: res.status, body: await res.json(), headers: res.headers },
        415,
        'unsupported_media_type',
      )
    })
  })

  test('each schema break is a 422 naming the field, and nothing is stored', async () => {
    await unchanged(async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ modelo: 'DHT22' }, 'tipo'],
        [{ tipo: 'temperatura' }, 'modelo'],
        [{ tipo: 5, modelo: 'DHT22' }, 'tipo'],
        [{ tipo: 'temperatura', modelo: ['DHT22'] }, 'modelo'],
        [{ tipo: '', modelo: 'DHT22' }, 'tipo'],
        [{ tipo: '   ', modelo: 'DHT22' }, 'tipo'],
        [{ tipo: 'a\u0000b', modelo: 'DHT22' }, 'tipo'],
        [{ tipo: 'x'.repeat(101), modelo: 'DHT22' }, 'tipo'],
        [{ tipo: 'temperatura', modelo: 'DHT22', nombre: 'x'.repeat(201) }, 'nombre'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: 0 }, 'location_id'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: -3 }, 'location_id'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: 1.5 }, 'location_id'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: 'tres' }, 'location_id'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: 2 ** 53 }, 'location_id'],
        [{ tipo: 'temperatura', modelo: 'DHT22', location_id: 1e300 }, 'location_id'],
      ]
      for (const [body, field] of cases) {
        const res = await server.api('POST', '/api/v1/sensors', body)
        expectInvalid(res, field)
      }
    })
  })

  test('an out-of-range number says what range it must be in', async () => {
    const res = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
      location_id: 0,
    })
    expect(res.body.message).toContain('greater or equal to 1')
  })

  test('a JSON body that is not an object is a 422', async () => {
    for (const body of ['[1,2]', 'null', '"sensor"', '42']) {
      const res = await server.api('POST', '/api/v1/sensors', body)
      expectError(res, 422, 'validation_error')
    }
  })
})

describe('GET /api/v1/sensors', () => {
  let typed: number[]
  beforeAll(async () => {
    typed = []
    for (let i = 0; i < 5; i++)
      typed.push((await create({ tipo: 'co2', modelo: `SCD-${i}`, location_id: locationId })).id)
  })

  test('lists sensors by id with the total in X-Total-Count', async () => {
    // A browser on another origin sends Origin; only then do the CORS headers apply.
    const res = await server.api('GET', '/api/v1/sensors', undefined, {
      origin: 'https://panel.example.com',
    })
    expect(res.status).toBe(200)
    const ids = res.body.map((s: { id: number }) => s.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    expect(Number(res.headers.get('x-total-count'))).toBe(await rowCount(server, sensors))
    expect(res.headers.get('access-control-expose-headers')).toContain('X-Total-Count')
  })

  test('limit and offset page through the list while X-Total-Count stays the total', async () => {
    const page1 = await server.api('GET', '/api/v1/sensors?tipo=co2&limit=2')
    const page2 = await server.api('GET', '/api/v1/sensors?tipo=co2&limit=2&offset=2')
    const page3 = await server.api('GET', '/api/v1/sensors?tipo=co2&limit=2&offset=4')
    const past = await server.api('GET', '/api/v1/sensors?tipo=co2&offset=50')
    expect(page1.body.map((s: { id: number }) => s.id)).toEqual(typed.slice(0, 2))
    expect(page2.body.map((s: { id: number }) => s.id)).toEqual(typed.slice(2, 4))
    expect(page3.body.map((s: { id: number }) => s.id)).toEqual(typed.slice(4))
    expect(past.body).toEqual([])
    for (const page of [page1, page2, page3, past])
      expect(page.headers.get('x-total-count')).toBe('5')
  })

  test('filters by tipo', async () => {
    const res = await server.api('GET', '/api/v1/sensors?tipo=co2')
    expect(res.body.length).toBe(5)
    expect(res.body.every((s: { tipo: string }) => s.tipo === 'co2')).toBe(true)
    const none = await server.api('GET', '/api/v1/sensors?tipo=presion')
    expect(none.body).toEqual([])
    expect(none.headers.get('x-total-count')).toBe('0')
  })

  test('filters by location_id', async () => {
    const other = (await server.api('POST', '/api/v1/locations', { nombre: 'Otro' })).body.id
    const lone = await create({ location_id: other })
    const res = await server.api('GET', `/api/v1/sensors?location_id=${other}`)
    expect(res.body).toEqual([lone])
    const here = await server.api('GET', `/api/v1/sensors?location_id=${locationId}`)
    expect(here.body.every((s: { location_id: number }) => s.location_id === locationId)).toBe(true)
    expect(here.body.length).toBeGreaterThanOrEqual(5)
  })

  test('a bad query parameter is a 422 naming it', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=1001', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=2.5', 'limit'],
      ['offset=-1', 'offset'],
      ['location_id=0', 'location_id'],
      ['location_id=99999999999999999999', 'location_id'],
    ]) {
      const res = await server.api('GET', `/api/v1/sensors?${query}`)
      expectInvalid(res, field!)
      expect(res.body.location).toBe('query')
    }
  })
})

describe('GET /api/v1/sensors/:id', () => {
  test('answers the sensor', async () => {
    const sensor = await create({ nombre: 'uno' })
    const res = await server.api('GET', `/api/v1/sensors/${sensor.id}`)
    expect(res.status).toBe(200)
    expect(res.body).toEqual(sensor)
  })

  test('an unknown id is a 404 that says which sensor', async () => {
    const res = await server.api('GET', '/api/v1/sensors/424242')
    expectError(res, 404, 'not_found')
    expect(res.body.message).toContain('Sensor 424242')
  })

  test('an id that is not a positive integer is a 422 naming id', async () => {
    for (const id of ['abc', '0', '-1', '1.5', '99999999999999999999', '9007199254740992']) {
      const res = await server.api('GET', `/api/v1/sensors/${id}`)
      expectInvalid(res, 'id')
      expect(res.body.location).toBe('path')
    }
  })
})

describe('PUT /api/v1/sensors/:id', () => {
  test('replaces the sensor, clears optional fields left out, and emits updated', async () => {
    const sensor = await create({
      nombre: 'viejo',
      location_id: locationId,
      thresholds: { temperatura: { max: 30 } },
    })
    expect(sensor.thresholds).toEqual({ temperatura: { max: 30 } })
    const res = await server.api('PUT', `/api/v1/sensors/${sensor.id}`, {
      tipo: 'humedad',
      modelo: 'SHT31',
    })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: sensor.id,
      tipo: 'humedad',
      modelo: 'SHT31',
      nombre: null,
      location_id: null,
      thresholds: null,
      created_at: sensor.created_at,
    })
    expect((await server.api('GET', `/api/v1/sensors/${sensor.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(general, 'sensor', 'updated', sensor.id, 'update_sensor')
    expect(event.data).toEqual(res.body)
    // Cleared is SQL NULL, not the JSON text 'null' (the write runs as a prepared statement on SQLite).
    const [stored] = await server.ctx.db.read
      .select({ cleared: sql<number>`count(*)` })
      .from(sensors)
      .where(and(eq(sensors.id, sensor.id), isNull(sensors.thresholds), isNull(sensors.nombre)))
    expect(Number(stored!.cleared)).toBe(1)
  })

  test('bad input changes nothing: missing field, wrong type, unknown location, unknown id', async () => {
    const sensor = await create({ nombre: 'fijo' })
    await unchanged(async () => {
      const url = `/api/v1/sensors/${sensor.id}`
      expectInvalid(await server.api('PUT', url, { tipo: 'humedad' }), 'modelo')
      expectInvalid(await server.api('PUT', url, { tipo: 1, modelo: 'x' }), 'tipo')
      expectError(await server.api('PUT', url, '{oops', {}), 400, 'invalid_body')
      expectInvalid(
        await server.api('PUT', url, { tipo: 'a', modelo: 'b', location_id: 31337 }),
        'location_id',
        'unknown_reference',
      )
      expectError(
        await server.api('PUT', '/api/v1/sensors/31337', { tipo: 'a', modelo: 'b' }),
        404,
        'not_found',
      )
      expectInvalid(await server.api('PUT', '/api/v1/sensors/0', { tipo: 'a', modelo: 'b' }), 'id')
      expect((await server.api('GET', url)).body).toEqual(sensor)
    })
  })
})

describe('PATCH /api/v1/sensors/:id', () => {
  test('changes only the fields it names and emits updated', async () => {
    const sensor = await create({
      nombre: 'antes',
      location_id: locationId,
      thresholds: { humedad: { min: 20, for_readings: 3 } },
    })
    const res = await server.api('PATCH', `/api/v1/sensors/${sensor.id}`, { nombre: 'después' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ ...sensor, nombre: 'después', updated_at: expect.any(String) })
    expect((await server.api('GET', `/api/v1/sensors/${sensor.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(general, 'sensor', 'updated', sensor.id, 'update_sensor')
    expect(event.data).toEqual(res.body)
  })

  test('null detaches the sensor from its location', async () => {
    const sensor = await create({ location_id: locationId })
    const res = await server.api('PATCH', `/api/v1/sensors/${sensor.id}`, { location_id: null })
    expect(res.body.location_id).toBeNull()
  })

  test('bad input changes nothing: empty patch, wrong type, unknown location, unknown id', async () => {
    const sensor = await create()
    await unchanged(async () => {
      const url = `/api/v1/sensors/${sensor.id}`
      expectError(await server.api('PATCH', url, {}), 422, 'validation_error')
      expectInvalid(await server.api('PATCH', url, { modelo: false }), 'modelo')
      expectError(await server.api('PATCH', url, 'nombre=x', { 'content-type': 'text/plain' }), 400)
      expectInvalid(
        await server.api('PATCH', url, { location_id: 5555 }),
        'location_id',
        'unknown_reference',
      )
      expectError(await server.api('PATCH', '/api/v1/sensors/5555', { nombre: 'x' }), 404)
      expect((await server.api('GET', url)).body).toEqual(sensor)
    })
  })
})

describe('DELETE /api/v1/sensors/:id', () => {
  test('answers 204 with no body, emits deleted, and the sensor is gone', async () => {
    const sensor = await create()
    await expectDeleted(server, general, '/api/v1/sensors', 'sensor', sensor)
  })

  test('cascades to its readings, with one deleted event and none for the readings', async () => {
    const sensor = await create()
    const keep = await create()
    const batch = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: sensor.id, temperatura: 20 },
      { sensor_id: sensor.id, temperatura: 21 },
      { sensor_id: keep.id, temperatura: 22 },
    ])
    expect(batch.status).toBe(201)
    const stored = await rowCount(server, readings)
    await settle(server, general, 'general')
    const from = general.messages.length
    expect((await server.api('DELETE', `/api/v1/sensors/${sensor.id}`)).status).toBe(204)
    await settle(server, general, 'general')

    const after = general.messages.slice(from).filter((m) => m.type === 'entity_event')
    expect(after.map((m) => [m.entity_type, m.event_type, m.entity_id])).toEqual([
      ['sensor', 'deleted', sensor.id],
    ])
    expect(await rowCount(server, readings)).toBe(stored - 2)
    const left = await server.api('GET', `/api/v1/readings?sensor_id=${sensor.id}`)
    expect(left.body).toEqual([])
    expect(left.headers.get('x-total-count')).toBe('0')
    expectError(await server.api('GET', `/api/v1/readings/${batch.body[0].id}`), 404)
    expect((await server.api('GET', `/api/v1/readings/${batch.body[2].id}`)).status).toBe(200)
  })

  test('an id that is not a positive integer is a 422, an unknown one a 404', async () => {
    expectInvalid(await server.api('DELETE', '/api/v1/sensors/x'), 'id')
    expectError(await server.api('DELETE', '/api/v1/sensors/777777'), 404, 'not_found')
  })
})

describe('unknown routes', () => {
  test('answer 404 with the error envelope', async () => {
    for (const [method, path] of [
      ['GET', '/api/v1/sensor'],
      ['GET', '/api/v1/sensors/1/readings'],
      ['POST', '/api/v2/sensors'],
    ] as const) {
      const res = await server.api(method, path)
      expectError(res, 404, 'route_not_found')
      expect(res.body.message).toContain(path)
    }
  })

  test('a known path asked with a method it does not serve answers 405 with Allow', async () => {
    const res = await server.api('DELETE', '/api/v1/sensors')
    expectError(res, 405, 'method_not_allowed')
    expect(res.headers.get('allow')).toBe('GET, HEAD, POST, OPTIONS')
  })
})
