// Odd input at the edges of the rules: numbers written another way, huge offsets, NUL characters, a
// short Host header, and times no device clock can mean. Each is refused the same way everywhere.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { parsePayload, Rejection } from '../src/ingest/mqtt/payload'
import { startTestServer, type TestServer } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let sensor: number
let location: number
beforeAll(async () => {
  server = await startTestServer()
  location = (await server.api('POST', '/api/v1/locations', { nombre: 'Sala' })).body.id
  sensor = (
    await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm', location_id: location })
  ).body.id
})
afterAll(() => server.stop())

const LIST_ROUTES = [
  '/api/v1/sensors',
  '/api/v1/locations',
  '/api/v1/readings',
  '/api/v1/anomalies',
  '/api/v1/predictions',
]

describe('numbers in paths and queries', () => {
  test('an offset of 2^63 or more is a 422 naming offset on every list route, never a 500', async () => {
    for (const path of LIST_ROUTES)
      for (const offset of ['1e21', '9223372036854775808', '99999999999999999999'])
        expect(await answer('GET', `${path}?offset=${offset}`)).toEqual({
          status: 422,
          field: 'offset',
        })
    const huge = await server.api('GET', `/api/v1/sensors?offset=${Number.MAX_SAFE_INTEGER}`)
    expect(huge.status).toBe(200)
    expect(huge.body).toEqual([])
  })

  test('an id or a number in the query is decimal digits: 0x1, 1e0, +1, 01 and " 1" are 422, never another row', async () => {
    for (const id of ['0x1', '1e0', '+1', '01', '%201', '1.0', '0b1'])
      for (const method of ['GET', 'DELETE']) {
        const res = await server.api(method, `/api/v1/sensors/${id}`)
        expect({ id, method, status: res.status, field: res.body.field }).toEqual({
          id,
          method,
          status: 422,
          field: 'id',
        })
        expect(res.body.message).toContain('decimal')
      }
    for (const query of ['sensor_id=0x1', 'limit=0x10', 'offset=1e1', 'sensor_id=%201'])
      expect((await server.api('GET', `/api/v1/readings?${query}`)).status).toBe(422)
    expect((await server.api('GET', `/api/v1/sensors/${sensor}`)).status).toBe(200)
  })

  test('an id in a JSON body is a JSON number: "2" is a 422 naming the field, in single and batch writes', async () => {
    const single = await server.api('POST', '/api/v1/readings', {
      sensor_id: String(sensor),
      temperatura: 20,
    })
    expect(single.status).toBe(422)
    expect(single.body.field).toBe('sensor_id')
    const batch = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: sensor, temperatura: 20 },
      { sensor_id: String(sensor), temperatura: 20 },
    ])
    expect(batch.status).toBe(422)
    expect(batch.body.field).toBe('[1].sensor_id')
    const moved = await server.api('PATCH', `/api/v1/sensors/${sensor}`, {
      location_id: String(location),
    })
    expect(moved.status).toBe(422)
    expect(moved.body.field).toBe('location_id')
    const predicted = await server.api('POST', '/api/v1/predictions', {
      sensor_id: sensor,
      variable: 'temperatura',
      horizon_minutes: '60',
    })
    expect(predicted.status).toBe(422)
    expect(predicted.body.field).toBe('horizon_minutes')
    expect((await server.api('GET', `/api/v1/readings?sensor_id=${sensor}`)).body).toEqual([])
  })
})

describe('text', () => {
  test('a NUL character anywhere in a query or body is a 422 naming the field, on both databases', async () => {
    await server.api('POST', '/api/v1/locations', { nombre: 'Otra' })
    const filtered = await server.api('GET', '/api/v1/locations?nombre=%00')
    expect(filtered.status).toBe(422)
    expect(filtered.body).toMatchObject({ error: 'validation_error', field: 'nombre' })
    expect((await server.api('GET', '/api/v1/sensors?tipo=t%00')).status).toBe(422)
    for (const [path, body, field] of [
      ['/api/v1/locations', { nombre: 'a\u0000b' }, 'nombre'],
      ['/api/v1/locations', { nombre: 'ok', descripcion: 'x\u0000' }, 'descripcion'],
      ['/api/v1/sensors', { tipo: 't', modelo: 'm', nombre: '\u0000' }, 'nombre'],
    ] as const) {
      const res = await server.api('POST', path, body)
      expect({ path, status: res.status, field: res.body.field }).toEqual({
        path,
        status: 422,
        field,
      })
      expect(res.body.message).toContain('NUL')
    }
    const names = (await server.api('GET', '/api/v1/locations')).body.map(
      (l: { nombre: string }) => l.nombre,
    )
    expect(names.sort()).toEqual(['Otra', 'Sala'])
  })
})

describe('the Host header', () => {
  /** Sends one raw request line with this Host and returns the status. */
  const raw = (line: string, host: string) =>
    new Promise<number>((resolve) => {
      let text = ''
      Bun.connect({
        hostname: '127.0.0.1',
        port: server.port,
        socket: {
          data(socket, data) {
            text += data.toString()
            if (text.includes('\r\n\r\n')) {
              resolve(Number(text.split(' ')[1]))
              socket.end()
            }
          },
        },
      }).then((socket) => socket.write(`${line} HTTP/1.1\r\nHost: ${host}\r\n\r\n`))
    })

  test('of three characters or fewer does not move the path: /ab/metrics is not /metrics', async () => {
    for (const host of ['x', 'ab', 'abc', 'a.b', 'localhost', '127.0.0.1:8000']) {
      expect({ host, status: await raw('GET /ab/metrics', host) }).toEqual({ host, status: 404 })
      expect({ host, status: await raw('GET /ab/api/v1/users', host) }).toEqual({
        host,
        status: 404,
      })
      expect({ host, status: await raw('GET /metrics', host) }).toEqual({ host, status: 200 })
      expect({ host, status: await raw('GET /api/v1/sensors?limit=1', host) }).toEqual({
        host,
        status: 200,
      })
    }
  })
})

describe('reading times', () => {
  const DAY = 24 * 3600 * 1000
  const cases = [
    ['0001-01-01T00:00:00Z', false],
    ['1999-12-31T23:59:59Z', false],
    ['2000-01-01T00:00:00Z', true],
    ['2025-07-20T10:30:00Z', true],
    [new Date(Date.now() + DAY / 2).toISOString(), true],
    [new Date(Date.now() + 2 * DAY).toISOString(), false],
    ['9999-12-31T00:00:00Z', false],
  ] as const

  test('follow one rule over REST, batch and MQTT: from 2000 to a day ahead of the server clock', async () => {
    for (const [timestamp, valid] of cases) {
      const single = await server.api('POST', '/api/v1/readings', {
        sensor_id: sensor,
        temperatura: 20,
        timestamp,
      })
      expect({ timestamp, status: single.status }).toEqual({ timestamp, status: valid ? 201 : 422 })
      if (!valid) {
        expect(single.body.field).toBe('timestamp')
        expect(single.body.message).toContain('2000')
      }
      const batch = await server.api('POST', '/api/v1/readings/batch', [
        { sensor_id: sensor, temperatura: 20, timestamp: '2025-07-20T10:30:00Z' },
        { sensor_id: sensor, temperatura: 20, timestamp },
      ])
      expect({ timestamp, status: batch.status }).toEqual({ timestamp, status: valid ? 201 : 422 })
      if (!valid) expect(batch.body.field).toBe('[1].timestamp')

      const payload = new TextEncoder().encode(
        JSON.stringify({ ts: timestamp, values: { temperatura: 20 } }),
      )
      let mqtt: string = 'stored'
      try {
        parsePayload(payload, sensor)
      } catch (error) {
        mqtt = error instanceof Rejection ? error.reason : String(error)
      }
      expect({ timestamp, mqtt }).toEqual({ timestamp, mqtt: valid ? 'stored' : 'out_of_range' })
    }
    const stored = await server.api('GET', `/api/v1/readings?sensor_id=${sensor}&limit=1000`)
    expect(stored.body.every((r: { timestamp: string }) => r.timestamp >= '2000')).toBe(true)
  })

  test('a correction with PUT or PATCH follows the same rule', async () => {
    const reading = (
      await server.api('POST', '/api/v1/readings', {
        sensor_id: sensor,
        temperatura: 20,
        timestamp: '2025-07-20T10:30:00Z',
      })
    ).body
    const patched = await server.api('PATCH', `/api/v1/readings/${reading.id}`, {
      timestamp: '1970-01-01T00:00:00Z',
    })
    expect(patched.status).toBe(422)
    const replaced = await server.api('PUT', `/api/v1/readings/${reading.id}`, {
      sensor_id: sensor,
      temperatura: 21,
      timestamp: '9999-01-01T00:00:00Z',
    })
    expect(replaced.status).toBe(422)
    expect((await server.api('GET', `/api/v1/readings/${reading.id}`)).body.timestamp).toBe(
      '2025-07-20T10:30:00Z',
    )
  })
})

/** Status and named field of a request's answer. */
async function answer(method: string, path: string) {
  const res = await server.api(method, path)
  return { status: res.status, field: res.body?.field }
}
