// REST /api/v1/locations against a real server: every route, its event, and bad input on each.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { locations } from '../src/db/schema'
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
import { settle, startWatchedServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient

beforeAll(async () => {
  ;({ server, general } = await startWatchedServer())
})
afterAll(() => server.stop())

/** Bad input must leave the table and the event log as they were. */
const unchanged = (run: () => Promise<void>) => expectUnchanged(server, locations, run)

const create = async (body: Record<string, unknown> = {}) => {
  const res = await server.api('POST', '/api/v1/locations', { nombre: 'Invernadero', ...body })
  expect(res.status).toBe(201)
  return res.body
}

describe('POST /api/v1/locations', () => {
  test('stores a location and answers 201 with it', async () => {
    const body = {
      nombre: 'Invernadero norte',
      descripcion: 'Nave 2',
      latitud: 40.4,
      longitud: -3.7,
    }
    const res = await server.api('POST', '/api/v1/locations', body)
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      ...body,
      created_at: expect.stringMatching(ISO_Z),
      updated_at: res.body.created_at,
    })
    expect((await server.api('GET', `/api/v1/locations/${res.body.id}`)).body).toEqual(res.body)
    const event = await expectEntityEvent(
      general,
      'location',
      'created',
      res.body.id,
      'create_location',
    )
    expect(event.data).toEqual(res.body)
  })

  test('only nombre is required; the rest are null', async () => {
    const location = await create({ nombre: 'Sótano' })
    expect(location).toMatchObject({ descripcion: null, latitud: null, longitud: null })
  })

  test('the coordinate bounds are inclusive', async () => {
    const edge = await create({ latitud: -90, longitud: 180 })
    expect(edge).toMatchObject({ latitud: -90, longitud: 180 })
  })

  test('each schema break is a 422 naming the field, and nothing is stored', async () => {
    await unchanged(async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{}, 'nombre'],
        [{ nombre: '' }, 'nombre'],
        [{ nombre: '  ' }, 'nombre'],
        [{ nombre: 7 }, 'nombre'],
        [{ nombre: 'x'.repeat(201) }, 'nombre'],
        [{ nombre: 'A', descripcion: 'x'.repeat(2001) }, 'descripcion'],
        [{ nombre: 'A', latitud: 90.5 }, 'latitud'],
        [{ nombre: 'A', latitud: -91 }, 'latitud'],
        [{ nombre: 'A', longitud: 180.01 }, 'longitud'],
        [{ nombre: 'A', longitud: -181 }, 'longitud'],
        [{ nombre: 'A', latitud: 'norte' }, 'latitud'],
      ]
      for (const [body, field] of cases)
        expectInvalid(await server.api('POST', '/api/v1/locations', body), field)
      const range = await server.api('POST', '/api/v1/locations', { nombre: 'A', latitud: 91 })
      expect(range.body.message).toContain('less or equal to 90')
      expectError(await server.api('POST', '/api/v1/locations', '{"nombre":'), 400, 'invalid_body')
    })
  })
})

describe('GET /api/v1/locations', () => {
  let made: number[]
  beforeAll(async () => {
    made = []
    for (const nombre of ['Zona 10% norte', 'Zona_sur', 'Zona este', 'Almacén'])
      made.push((await create({ nombre })).id)
  })

  test('lists by id with X-Total-Count, paged by limit and offset', async () => {
    const all = await server.api('GET', '/api/v1/locations')
    expect(all.status).toBe(200)
    const total = await rowCount(server, locations)
    expect(all.headers.get('x-total-count')).toBe(String(total))
    const ids = all.body.map((l: { id: number }) => l.id)
    expect(ids).toEqual([...ids].sort((a, b) => a - b))
    const page = await server.api('GET', '/api/v1/locations?limit=2&offset=1')
    expect(page.body.map((l: { id: number }) => l.id)).toEqual(ids.slice(1, 3))
    expect(page.headers.get('x-total-count')).toBe(String(total))
  })

  test('nombre filters by a part of the name, with % and _ taken literally', async () => {
    const zona = await server.api('GET', '/api/v1/locations?nombre=Zona')
    expect(zona.body.map((l: { id: number }) => l.id)).toEqual(made.slice(0, 3))
    expect(zona.headers.get('x-total-count')).toBe('3')
    const percent = await server.api('GET', `/api/v1/locations?nombre=${encodeURIComponent('10%')}`)
    expect(percent.body.map((l: { id: number }) => l.id)).toEqual([made[0]])
    const underscore = await server.api('GET', '/api/v1/locations?nombre=a_s')
    expect(underscore.body.map((l: { id: number }) => l.id)).toEqual([made[1]])
    const none = await server.api('GET', '/api/v1/locations?nombre=Marte')
    expect(none.body).toEqual([])
  })

  test('a bad query parameter is a 422 naming it', async () => {
    for (const [query, field] of [
      ['limit=0', 'limit'],
      ['limit=x', 'limit'],
      ['offset=-5', 'offset'],
      [`nombre=${'x'.repeat(201)}`, 'nombre'],
    ])
      expectInvalid(await server.api('GET', `/api/v1/locations?${query}`), field!)
  })
})

describe('GET /api/v1/locations/:id', () => {
  test('answers the location, 404 for an unknown id, 422 for a bad one', async () => {
    const location = await create()
    await expectFoundById(server, '/api/v1/locations', 'Location', location)
  })
})

describe('PUT /api/v1/locations/:id', () => {
  test('replaces the location, clears what is left out, and emits updated', async () => {
    const location = await create({ descripcion: 'vieja', latitud: 1, longitud: 2 })
    const res = await server.api('PUT', `/api/v1/locations/${location.id}`, { nombre: 'Nueva' })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({
      id: location.id,
      nombre: 'Nueva',
      descripcion: null,
      latitud: null,
      longitud: null,
      created_at: location.created_at,
    })
    const event = await expectEntityEvent(
      general,
      'location',
      'updated',
      location.id,
      'update_location',
    )
    expect(event.data).toEqual(res.body)
  })

  test('bad input changes nothing', async () => {
    const location = await create()
    await unchanged(async () => {
      const url = `/api/v1/locations/${location.id}`
      expectInvalid(await server.api('PUT', url, { descripcion: 'sin nombre' }), 'nombre')
      expectInvalid(await server.api('PUT', url, { nombre: 'A', longitud: 200 }), 'longitud')
      expectError(await server.api('PUT', url, 'nombre', { 'content-type': 'text/plain' }), 400)
      expectError(await server.api('PUT', '/api/v1/locations/6060', { nombre: 'A' }), 404)
      expect((await server.api('GET', url)).body).toEqual(location)
    })
  })
})

describe('PATCH /api/v1/locations/:id', () => {
  test('changes only the fields it names and emits updated', async () => {
    const location = await create({ descripcion: 'queda', latitud: 10 })
    const res = await server.api('PATCH', `/api/v1/locations/${location.id}`, { latitud: 11.5 })
    expect(res.status).toBe(200)
    expect(res.body).toMatchObject({ ...location, latitud: 11.5, updated_at: expect.any(String) })
    const event = await expectEntityEvent(
      general,
      'location',
      'updated',
      location.id,
      'update_location',
    )
    expect(event.data).toEqual(res.body)
  })

  test('bad input changes nothing', async () => {
    const location = await create()
    await unchanged(async () => {
      const url = `/api/v1/locations/${location.id}`
      expectError(await server.api('PATCH', url, {}), 422, 'validation_error')
      expectInvalid(await server.api('PATCH', url, { latitud: -90.1 }), 'latitud')
      expectInvalid(await server.api('PATCH', url, { nombre: null }), 'nombre')
      expectError(await server.api('PATCH', url, '['), 400, 'invalid_body')
      expectError(await server.api('PATCH', '/api/v1/locations/6061', { nombre: 'A' }), 404)
      expect((await server.api('GET', url)).body).toEqual(location)
    })
  })
})

describe('DELETE /api/v1/locations/:id', () => {
  test('answers 204, emits deleted, and the location is gone', async () => {
    const location = await create()
    await expectDeleted(server, general, '/api/v1/locations', 'location', location)
    expectInvalid(await server.api('DELETE', '/api/v1/locations/zero'), 'id')
  })

  test('detaches its sensors, each with an updated event, and leaves other sensors alone', async () => {
    const doomed = await create({ nombre: 'Se va' })
    const other = await create({ nombre: 'Se queda' })
    const post = (location_id: number) =>
      server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm', location_id })
    const a = (await post(doomed.id)).body
    const b = (await post(doomed.id)).body
    const stays = (await post(other.id)).body
    await settle(server, general, 'general')
    const from = general.messages.length

    expect((await server.api('DELETE', `/api/v1/locations/${doomed.id}`)).status).toBe(204)
    await settle(server, general, 'general')

    const events = general.messages.slice(from).filter((m) => m.type === 'entity_event')
    expect(events.map((m) => [m.entity_type, m.event_type, m.entity_id])).toEqual([
      ['location', 'deleted', doomed.id],
      ['sensor', 'updated', a.id],
      ['sensor', 'updated', b.id],
    ])
    for (const event of events.slice(1)) {
      expect(event.metadata).toMatchObject({ action: 'update_sensor' })
      expect(event.data.location_id).toBeNull()
      expect((await server.api('GET', `/api/v1/sensors/${event.entity_id}`)).body).toEqual(
        event.data,
      )
    }
    expect((await server.api('GET', `/api/v1/sensors/${stays.id}`)).body).toEqual(stays)
  })
})
