// REST /api/v1/readings against a real server: every route, the all-or-none batch, and bad input.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readings } from '../src/db/schema'
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
import {
  createSensor,
  settle,
  startWatchedServer,
  type ApiResponse,
  type TestServer,
  type WsClient,
} from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
let general: WsClient
let sensorId: number
let otherSensorId: number

beforeAll(async () => {
  ;({ server, general } = await startWatchedServer())
  sensorId = await createSensor(server)
  otherSensorId = await createSensor(server)
})
afterAll(() => server.stop())

const create = async (body: Record<string, unknown> = {}) => {
  const res = await server.api('POST', '/api/v1/readings', {
    sensor_id: sensorId,
    temperatura: 20,
    humedad: 50,
    ...body,
  })
  expect(res.status).toBe(201)
  return res.body
}

/** What a write that honoured `Prefer: return=minimal` answers: 201, no body, no compression. */
const expectMinimal = (res: ApiResponse) => {
  expect(res.status).toBe(201)
  expect(res.body).toBeUndefined()
  expect(res.headers.get('preference-applied')).toBe('return=minimal')
  expect(res.headers.get('content-encoding')).toBeNull()
}

/** Bad input must leave the table and the event log as they were. */
const unchanged = (run: () => Promise<void>) => expectUnchanged(server, readings, run)

describe('POST /api/v1/readings', () => {
  test('stores the original body and answers 201 with the stored reading', async () => {
    const body = {
      sensor_id: sensorId,
      temperatura: 23.5,
      humedad: 65.2,
      timestamp: '2025-07-20T10:30:00Z',
    }
    const res = await server.api('POST', '/api/v1/readings', body)
    expect(res.status).toBe(201)
    expect(res.body).toEqual({
      id: expect.any(Number),
      ...body,
      values: { temperatura: 23.5, humedad: 65.2 },
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

  test('without a timestamp the reading takes the server time', async () => {
    const before = Date.now()
    const reading = await create({ timestamp: undefined })
    const after = Date.now()
    expect(reading.timestamp).toMatch(ISO_Z)
    const at = Date.parse(reading.timestamp)
    expect(at).toBeGreaterThanOrEqual(before)
    expect(at).toBeLessThanOrEqual(after)
  })

  test('a timestamp with an offset or no zone is stored as UTC with Z', async () => {
    expect((await create({ timestamp: '2025-07-20T12:30:00+02:00' })).timestamp).toBe(
      '2025-07-20T10:30:00Z',
    )
    expect((await create({ timestamp: '2025-07-20T10:30:00' })).timestamp).toBe(
      '2025-07-20T10:30:00Z',
    )
    expect((await create({ timestamp: '2025-07-20T10:30:00.250Z' })).timestamp).toBe(
      '2025-07-20T10:30:00.250Z',
    )
  })

  test('one of temperatura and humedad is enough; the other is null', async () => {
    expect(await create({ humedad: undefined })).toMatchObject({ temperatura: 20, humedad: null })
    expect(await create({ temperatura: null })).toMatchObject({ temperatura: null, humedad: 50 })
  })

  test('a reading of a sensor that does not exist is a 422 naming sensor_id; nothing is stored', async () => {
    await unchanged(async () => {
      const res = await server.api('POST', '/api/v1/readings', {
        sensor_id: 999_999,
        temperatura: 21,
      })
      expectInvalid(res, 'sensor_id', 'unknown_reference')
      expect(res.body.message).toContain('Sensor 999999 does not exist')
    })
  })

  test('concurrent POSTs are each answered as if sent alone: the bad one is refused, the rest stored once', async () => {
    const before = await rowCount(server, readings)
    const bodies = Array.from({ length: 30 }, (_, i) =>
      i === 7
        ? { sensor_id: 999_999, temperatura: 1 }
        : { sensor_id: i % 2 ? sensorId : otherSensorId, temperatura: 100 + i, humedad: i },
    )
    const answers = await Promise.all(bodies.map((b) => server.api('POST', '/api/v1/readings', b)))
    expectInvalid(answers[7]!, 'sensor_id', 'unknown_reference')
    const stored = answers.filter((_, i) => i !== 7)
    for (const [i, res] of answers.entries()) {
      if (i === 7) continue
      expect(res.status).toBe(201)
      expect(res.body).toMatchObject(bodies[i]!)
      expect((await server.api('GET', `/api/v1/readings/${res.body.id}`)).body).toEqual(res.body)
    }
    expect(new Set(stored.map((r) => r.body.id)).size).toBe(29)
    expect(await rowCount(server, readings)).toBe(before + 29)
  })

  test('each schema break is a 422 naming the field; nothing is stored', async () => {
    await unchanged(async () => {
      const cases: [Record<string, unknown>, string][] = [
        [{ temperatura: 20 }, 'sensor_id'],
        [{ sensor_id: '1x', temperatura: 20 }, 'sensor_id'],
        [{ sensor_id: 0, temperatura: 20 }, 'sensor_id'],
        [{ sensor_id: 2 ** 53, temperatura: 20 }, 'sensor_id'],
        [{ sensor_id: sensorId }, 'values'],
        [{ sensor_id: sensorId, temperatura: null, humedad: null }, 'values'],
        [{ sensor_id: sensorId, temperatura: 'caliente' }, 'temperatura'],
        [{ sensor_id: sensorId, temperatura: -273.2 }, 'temperatura'],
        [{ sensor_id: sensorId, temperatura: 1000.5 }, 'temperatura'],
        [{ sensor_id: sensorId, humedad: -0.1 }, 'humedad'],
        [{ sensor_id: sensorId, humedad: 100.1 }, 'humedad'],
        [{ sensor_id: sensorId, temperatura: 20, timestamp: 1753007400 }, 'timestamp'],
      ]
      for (const [body, field] of cases)
        expectInvalid(await server.api('POST', '/api/v1/readings', body), field)
      const range = await server.api('POST', '/api/v1/readings', {
        sensor_id: sensorId,
        humedad: 101,
      })
      expect(range.body.message).toContain('less or equal to 100')
    })
  })

  test('a timestamp that is not a real instant is a 422 naming timestamp; nothing is stored', async () => {
    await unchanged(async () => {
      for (const timestamp of [
        '2025-02-30T00:00:00Z',
        '2025-02-29T12:00:00Z',
        '2025-13-01T00:00:00Z',
        '2025-00-10T00:00:00Z',
        '2025-07-20T25:00:00Z',
        '2025-07-20T10:61:00Z',
        '2025-07-20',
        'yesterday',
        '20/07/2025 10:30',
        '',
      ]) {
        const res = await server.api('POST', '/api/v1/readings', {
          sensor_id: sensorId,
          temperatura: 20,
          timestamp,
        })
        expectInvalid(res, 'timestamp')
        expect(res.body.message).toContain('2025-07-20T10:30:00Z')
      }
    })
  })

  test('February 29th of a leap year is a real date', async () => {
    expect((await create({ timestamp: '2024-02-29T12:00:00Z' })).timestamp).toBe(
      '2024-02-29T12:00:00Z',
    )
  })

  test('with Prefer: return=minimal it answers 201 with no body, the Location and Preference-Applied', async () => {
    await settle(server, general, 'general')
    const from = general.messages.length
    const body = { sensor_id: sensorId, temperatura: 24.5, timestamp: '2025-07-21T08:00:00Z' }
    // The usual header whole, one among others, and in capitals (RFC 7240's names are case-insensitive).
    for (const prefer of ['return=minimal', 'handling=strict, return=minimal', 'Return=MINIMAL']) {
      const res = await server.api('POST', '/api/v1/readings', body, {
        prefer,
        'accept-encoding': 'gzip, br',
      })
      expectMinimal(res)
      const location = res.headers.get('location')!
      expect(location).toMatch(/^\/api\/v1\/readings\/\d+$/)
      const stored = await server.api('GET', location)
      expect(stored.body).toMatchObject({ ...body, humedad: null })
      const id = stored.body.id
      await expectEntityEvent(general, 'reading', 'created', id, 'create_reading')
      expect(general.messages.slice(from).some((m) => m.entity_id === id)).toBe(true)
    }
    // Without the preference (or with return=representation) the reading comes back as before.
    for (const prefer of [undefined, 'return=representation']) {
      const full = await server.api('POST', '/api/v1/readings', body, prefer ? { prefer } : {})
      expect(full.status).toBe(201)
      expect(full.body).toMatchObject(body)
      expect(full.headers.get('preference-applied')).toBeNull()
    }
  })

  test('with Prefer: return=minimal bad input is still a 422 with its error body; nothing is stored', async () => {
    await unchanged(async () => {
      const res = await server.api(
        'POST',
        '/api/v1/readings',
        { sensor_id: sensorId, temperatura: 'x' },
        { prefer: 'return=minimal' },
      )
      expectInvalid(res, 'temperatura')
      expect(res.headers.get('preference-applied')).toBeNull()
    })
  })

  test('a body that is not JSON is a 400; nothing is stored', async () => {
    await unchanged(async () => {
      expectError(await server.api('POST', '/api/v1/readings', '{"sensor_id":1,'), 400)
      expectError(
        await server.api('POST', '/api/v1/readings', 'sensor_id=1&temperatura=2', {
          'content-type': 'application/x-www-form-urlencoded',
        }),
        400,
        'invalid_body',
      )
    })
  })
})

describe('POST /api/v1/readings/batch', () => {
  test('stores every reading in order, with one created event each', async () => {
    await settle(server, general, 'general')
    const from = general.messages.length
    const items = [
      { sensor_id: sensorId, temperatura: 10, timestamp: '2025-01-01T00:00:00Z' },
      { sensor_id: otherSensorId, humedad: 40, timestamp: '2025-01-01T00:01:00Z' },
      { sensor_id: sensorId, temperatura: 11, humedad: 41 },
    ]
    const res = await server.api('POST', '/api/v1/readings/batch', items)
    expect(res.status).toBe(201)
    expect(res.body).toHaveLength(3)
    res.body.forEach((reading: Record<string, unknown>, i: number) =>
      expect(reading).toMatchObject(items[i]!),
    )
    await settle(server, general, 'general')
    const events = general.messages.slice(from).filter((m) => m.type === 'entity_event')
    expect(events.map((e) => [e.event_type, e.entity_id, e.metadata.action])).toEqual(
      res.body.map((r: { id: number }) => ['created', r.id, 'create_reading']),
    )
    expect(events.map((e) => e.data)).toEqual(res.body)
    expect(events[1]!.seq).toBe(events[0]!.seq + 1)
    expect(events[2]!.seq).toBe(events[1]!.seq + 1)
    for (const reading of res.body)
      expect((await server.api('GET', `/api/v1/readings/${reading.id}`)).body).toEqual(reading)
  })

  test('with Prefer: return=minimal it stores every reading and answers 201 with no body', async () => {
    await settle(server, general, 'general')
    const from = general.messages.length
    const items = Array.from({ length: 50 }, (_, i) => ({
      sensor_id: i % 2 ? sensorId : otherSensorId,
      values: { co2: 400 + i },
      timestamp: `2025-03-01T00:${String(i).padStart(2, '0')}:00Z`,
    }))
    const before = await rowCount(server, readings)
    const res = await server.api('POST', '/api/v1/readings/batch', items, {
      Prefer: 'return=minimal',
      'accept-encoding': 'br, gzip',
    })
    expectMinimal(res)
    expect(await rowCount(server, readings)).toBe(before + 50)
    await settle(server, general, 'general')
    const events = general.messages
      .slice(from)
      .filter((m) => m.type === 'entity_event' && m.entity_type === 'reading')
    expect(events.map((e) => e.data.values.co2)).toEqual(items.map((item) => item.values.co2))
  })

  test('one bad item is a 422 naming [i].field, nothing is stored and no event is emitted', async () => {
    const good = { sensor_id: sensorId, temperatura: 20 }
    const cases: [unknown[], string, string?][] = [
      [[good, { sensor_id: 424242, temperatura: 1 }], '[1].sensor_id', 'unknown_reference'],
      [[good, good, { sensor_id: sensorId, temperatura: 'x' }], '[2].temperatura'],
      [[{ sensor_id: sensorId, humedad: 120 }, good], '[0].humedad'],
      [[good, { temperatura: 3 }], '[1].sensor_id'],
      [[good, { sensor_id: sensorId }], '[1].values'],
      [[good, { ...good, timestamp: '2025-02-30T00:00:00Z' }], '[1].timestamp'],
      [[good, { ...good, timestamp: 'ayer' }], '[1].timestamp'],
    ]
    await settle(server, general, 'general')
    const from = general.messages.length
    await unchanged(async () => {
      for (const [body, field, code] of cases)
        expectInvalid(await server.api('POST', '/api/v1/readings/batch', body), field, code)
    })
    await settle(server, general, 'general')
    expect(general.messages.slice(from).filter((m) => m.type === 'entity_event')).toEqual([])
  })

  test('an empty list, a non-list, too many items or a non-JSON body store nothing', async () => {
    await unchanged(async () => {
      expectError(await server.api('POST', '/api/v1/readings/batch', []), 422, 'validation_error')
      expectError(
        await server.api('POST', '/api/v1/readings/batch', { sensor_id: sensorId, temperatura: 1 }),
        422,
        'validation_error',
      )
      const many = Array.from({ length: 10_001 }, () => ({ sensor_id: sensorId, temperatura: 1 }))
      expectError(await server.api('POST', '/api/v1/readings/batch', many), 422, 'validation_error')
      expectError(await server.api('POST', '/api/v1/readings/batch', '[{'), 400, 'invalid_body')
    })
  })
})

describe('GET /api/v1/readings', () => {
  let sensor: number
  let made: { id: number; timestamp: string }[]
  beforeAll(async () => {
    sensor = await createSensor(server)
    made = []
    for (const minute of [0, 10, 20, 30, 40])
      made.push(
        await create({
          sensor_id: sensor,
          temperatura: minute,
          timestamp: `2025-03-01T08:${String(minute).padStart(2, '0')}:00Z`,
        }),
      )
  })
  const ids = (body: { id: number }[]) => body.map((r) => r.id)

  test('filters by sensor_id, newest first, with X-Total-Count', async () => {
    const res = await server.api('GET', `/api/v1/readings?sensor_id=${sensor}`)
    expect(res.status).toBe(200)
    expect(ids(res.body)).toEqual(ids(made).reverse())
    expect(res.headers.get('x-total-count')).toBe('5')
    const all = await server.api('GET', '/api/v1/readings')
    expect(all.headers.get('x-total-count')).toBe(String(await rowCount(server, readings)))
  })

  test('order=asc lists oldest first', async () => {
    const res = await server.api('GET', `/api/v1/readings?sensor_id=${sensor}&order=asc`)
    expect(ids(res.body)).toEqual(ids(made))
  })

  test('from and to bound the measurement time, both inclusive', async () => {
    const res = await server.api(
      'GET',
      `/api/v1/readings?sensor_id=${sensor}&order=asc&from=2025-03-01T08:10:00Z&to=2025-03-01T08:30:00Z`,
    )
    expect(ids(res.body)).toEqual(ids(made.slice(1, 4)))
    expect(res.headers.get('x-total-count')).toBe('3')
    const onlyFrom = await server.api(
      'GET',
      `/api/v1/readings?sensor_id=${sensor}&from=2025-03-01T08:35:00Z`,
    )
    expect(ids(onlyFrom.body)).toEqual([made[4]!.id])
    const onlyTo = await server.api(
      'GET',
      `/api/v1/readings?sensor_id=${sensor}&to=${encodeURIComponent('2025-03-01T09:00:00+01:00')}`,
    )
    expect(ids(onlyTo.body)).toEqual([made[0]!.id])
  })

  test('limit and offset page through while X-Total-Count stays the total', async () => {
    const page = await server.api(
      'GET',
      `/api/v1/readings?sensor_id=${sensor}&order=asc&limit=2&offset=2`,
    )
    expect(ids(page.body)).toEqual(ids(made.slice(2, 4)))
    expect(page.headers.get('x-total-count')).toBe('5')
  })

  test('a bad query parameter is a 422 naming it', async () => {
    for (const [query, field] of [
      ['sensor_id=0', 'sensor_id'],
      ['sensor_id=abc', 'sensor_id'],
      ['from=2025-02-30T00:00:00Z', 'from'],
      ['to=2025-13-01T00:00:00Z', 'to'],
      ['from=last-week', 'from'],
      ['order=sideways', 'order'],
      ['limit=1001', 'limit'],
      ['offset=-1', 'offset'],
    ])
      expectInvalid(await server.api('GET', `/api/v1/readings?${query}`), field!)
  })
})

describe('GET /api/v1/readings/:id', () => {
  test('answers the reading, 404 for an unknown id, 422 for a bad one', async () => {
    const reading = await create()
    await expectFoundById(server, '/api/v1/readings', 'Reading', reading)
  })
})

describe('PUT /api/v1/readings/:id', () => {
  test('replaces the reading, clears a value left out, and emits updated', async () => {
    const reading = await create({ timestamp: '2025-05-05T05:05:05Z' })
    const res = await server.api('PUT', `/api/v1/readings/${reading.id}`, {
      sensor_id: otherSensorId,
      temperatura: 30,
      timestamp: '2025-05-05T06:00:00Z',
    })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      ...reading,
      sensor_id: otherSensorId,
      temperatura: 30,
      humedad: null,
      values: { temperatura: 30 },
      timestamp: '2025-05-05T06:00:00Z',
    })
    const event = await expectEntityEvent(
      general,
      'reading',
      'updated',
      reading.id,
      'update_reading',
    )
    expect(event.data).toEqual(res.body)
  })

  test('bad input changes nothing', async () => {
    const reading = await create({ timestamp: '2025-05-05T05:05:05Z' })
    const url = `/api/v1/readings/${reading.id}`
    const full = { sensor_id: sensorId, temperatura: 1, timestamp: '2025-05-05T06:00:00Z' }
    await unchanged(async () => {
      expectInvalid(
        await server.api('PUT', url, { sensor_id: sensorId, temperatura: 1 }),
        'timestamp',
      )
      expectInvalid(
        await server.api('PUT', url, { ...full, timestamp: '2025-04-31T00:00:00Z' }),
        'timestamp',
      )
      expectInvalid(
        await server.api('PUT', url, { ...full, sensor_id: 4444 }),
        'sensor_id',
        'unknown_reference',
      )
      expectInvalid(await server.api('PUT', url, { ...full, temperatura: null }), 'values')
      expectError(await server.api('PUT', url, 'x', { 'content-type': 'text/plain' }), 400)
      expectError(await server.api('PUT', '/api/v1/readings/4444', full), 404, 'not_found')
    })
    expect((await server.api('GET', url)).body).toEqual(reading)
  })
})

describe('PATCH /api/v1/readings/:id', () => {
  test('corrects only the fields it names and emits updated', async () => {
    const reading = await create({ timestamp: '2025-06-06T06:06:06Z' })
    const res = await server.api('PATCH', `/api/v1/readings/${reading.id}`, { humedad: 55.5 })
    expect(res.status).toBe(200)
    expect(res.body).toEqual({
      ...reading,
      humedad: 55.5,
      values: { temperatura: 20, humedad: 55.5 },
    })
    const event = await expectEntityEvent(
      general,
      'reading',
      'updated',
      reading.id,
      'update_reading',
    )
    expect(event.data).toEqual(res.body)
  })

  test('bad input changes nothing, including a patch that would leave no value', async () => {
    const reading = await create({ humedad: null, timestamp: '2025-06-06T06:06:06Z' })
    const url = `/api/v1/readings/${reading.id}`
    await unchanged(async () => {
      expectError(await server.api('PATCH', url, {}), 422, 'validation_error')
      expectInvalid(await server.api('PATCH', url, { temperatura: null }), 'values')
      expectInvalid(
        await server.api('PATCH', url, { timestamp: '2025-02-30T00:00:00Z' }),
        'timestamp',
      )
      expectInvalid(
        await server.api('PATCH', url, { sensor_id: 5151 }),
        'sensor_id',
        'unknown_reference',
      )
      expectInvalid(await server.api('PATCH', url, { humedad: 'mucha' }), 'humedad')
      expectError(
        await server.api('PATCH', url, 'humedad=1', { 'content-type': 'text/plain' }),
        400,
      )
      expectError(await server.api('PATCH', '/api/v1/readings/5151', { humedad: 1 }), 404)
    })
    expect((await server.api('GET', url)).body).toEqual(reading)
  })
})

describe('DELETE /api/v1/readings/:id', () => {
  test('answers 204, emits deleted, and the reading is gone', async () => {
    const reading = await create()
    await expectDeleted(server, general, '/api/v1/readings', 'reading', reading)
    expectInvalid(await server.api('DELETE', '/api/v1/readings/-4'), 'id')
  })
})
