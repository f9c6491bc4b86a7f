// CONTRACT §4 routing: each event reaches exactly its channels (entity, sub-channels, general), no others.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { settle, startTestServer, type TestServer, type WsClient } from './helpers'

setDefaultTimeout(30_000)

type Msg = Record<string, any>

/** One client per channel; sensors 1 and 2 sit in locations 1 and 2, sensor 3 and location 3 come later. */
const CHANNELS = [
  'general',
  'sensors',
  'readings',
  'locations',
  'anomalies',
  'predictions',
  'sensors:1',
  'sensors:2',
  'sensors:3',
  'readings:1',
  'readings:2',
  'anomalies:1',
  'anomalies:2',
  'predictions:1',
  'predictions:2',
  'locations:1',
  'locations:2',
  'locations:3',
] as const

let server: TestServer
const clients = new Map<string, WsClient>()

beforeAll(async () => {
  server = await startTestServer()
  for (const [nombre, id] of [
    ['Norte', 1],
    ['Sur', 2],
  ] as const)
    expect((await server.api('POST', '/api/v1/locations', { nombre })).body.id).toBe(id)
  for (const id of [1, 2])
    expect(
      (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm', location_id: id }))
        .body.id,
    ).toBe(id)
  for (const channel of CHANNELS) {
    const client = await server.ws('/api/v1/ws', { channel })
    await client.connected()
    clients.set(channel, client)
  }
})
afterAll(() => server.stop())

const isMarker = (m: Msg) => m.type === 'system_event' && String(m.message).startsWith('marker-')
const isEvent = (m: Msg) => (m.type === 'entity_event' || m.type === 'system_event') && !isMarker(m)

/**
 * Runs `trigger`, then puts a marker through every channel: events arrive in seq order, so once a
 * client has its marker it has everything the trigger sent it. Returns what each channel got.
 */
async function observe(trigger: () => Promise<unknown>) {
  const marks = new Map([...clients].map(([channel, c]) => [channel, c.messages.length]))
  await trigger()
  await Promise.all([...clients].map(([channel, c]) => settle(server, c, channel)))
  return new Map(
    [...clients].map(([channel, c]) => [
      channel,
      c.messages.slice(marks.get(channel)).filter(isEvent),
    ]),
  )
}

interface Expected {
  what: [string, string, number] | ['system', string]
  channels: string[]
}

const describeEvent = (m: Msg) =>
  m.type === 'system_event' ? ['system', m.message] : [m.entity_type, m.event_type, m.entity_id]

/** The trigger emitted exactly `expected` (in order), and each event reached exactly its channels. */
async function expectRouting(trigger: () => Promise<unknown>, expected: Expected[]) {
  const seen = await observe(trigger)
  const emitted = seen.get('general')!
  expect(emitted.map(describeEvent)).toEqual(expected.map((e) => e.what))
  for (const channel of CHANNELS) {
    const want = emitted.filter((_, i) => expected[i]!.channels.includes(channel))
    const got = seen.get(channel)!
    expect({ channel, got: got.map((m) => m.seq) }).toEqual({
      channel,
      got: want.map((m) => m.seq),
    })
    expect(got).toEqual(want)
  }
  return emitted
}

const api = (method: string, path: string, body?: unknown) =>
  server.api(method, path, body).then((res) => {
    if (res.status >= 300)
      throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(res.body)}`)
    return res.body
  })

describe('sensor events', () => {
  test('created goes to sensors, sensors:<id> and general, not to its location channel', async () => {
    await expectRouting(
      () => api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm', location_id: 1 }),
      [{ what: ['sensor', 'created', 3], channels: ['sensors', 'sensors:3', 'general'] }],
    )
  })

  test('updated goes to sensors, sensors:<id> and general', async () => {
    await expectRouting(
      () => api('PATCH', '/api/v1/sensors/1', { nombre: 'Uno' }),
      [{ what: ['sensor', 'updated', 1], channels: ['sensors', 'sensors:1', 'general'] }],
    )
    await expectRouting(
      () => api('PUT', '/api/v1/sensors/2', { tipo: 't', modelo: 'm2', location_id: 2 }),
      [{ what: ['sensor', 'updated', 2], channels: ['sensors', 'sensors:2', 'general'] }],
    )
  })
})

describe('location events', () => {
  test('created goes to locations, locations:<id> and general', async () => {
    await expectRouting(
      () => api('POST', '/api/v1/locations', { nombre: 'Este' }),
      [{ what: ['location', 'created', 3], channels: ['locations', 'locations:3', 'general'] }],
    )
  })

  test('updated goes to locations, locations:<id> and general, not to its sensors', async () => {
    await expectRouting(
      () => api('PATCH', '/api/v1/locations/1', { descripcion: 'Nave 1' }),
      [{ what: ['location', 'updated', 1], channels: ['locations', 'locations:1', 'general'] }],
    )
    await expectRouting(
      () => api('PUT', '/api/v1/locations/3', { nombre: 'Este bis' }),
      [{ what: ['location', 'updated', 3], channels: ['locations', 'locations:3', 'general'] }],
    )
  })
})

const readingChannels = (sensor: number) => [
  'readings',
  `readings:${sensor}`,
  `sensors:${sensor}`,
  'general',
]

const sensorChannels = (sensor: number) => ['sensors', `sensors:${sensor}`, 'general']

describe('reading events', () => {
  let readingId: number

  test('created goes to readings, readings:<sensor>, sensors:<sensor> and general; a sensor’s first reading also makes it online (sensor updated)', async () => {
    const [event] = await expectRouting(
      () => api('POST', '/api/v1/readings', { sensor_id: 1, temperatura: 20 }),
      [
        { what: ['reading', 'created', 1], channels: readingChannels(1) },
        { what: ['sensor', 'updated', 1], channels: sensorChannels(1) },
      ],
    )
    readingId = event!.entity_id
    await expectRouting(
      () => api('POST', '/api/v1/readings', { sensor_id: 1, temperatura: 21 }),
      [{ what: ['reading', 'created', 2], channels: readingChannels(1) }],
    )
  })

  test('a batch routes each reading by its own sensor', async () => {
    await expectRouting(
      () =>
        api('POST', '/api/v1/readings/batch', [
          { sensor_id: 2, temperatura: 1 },
          { sensor_id: 1, humedad: 2 },
          { sensor_id: 2, humedad: 3 },
        ]),
      [
        { what: ['reading', 'created', 3], channels: readingChannels(2) },
        { what: ['reading', 'created', 4], channels: readingChannels(1) },
        { what: ['reading', 'created', 5], channels: readingChannels(2) },
        { what: ['sensor', 'updated', 2], channels: sensorChannels(2) },
      ],
    )
  })

  test('updated goes to the same channels', async () => {
    await expectRouting(
      () => api('PATCH', `/api/v1/readings/${readingId}`, { temperatura: 21 }),
      [{ what: ['reading', 'updated', readingId], channels: readingChannels(1) }],
    )
    await expectRouting(
      () =>
        api('PUT', `/api/v1/readings/${readingId}`, {
          sensor_id: 1,
          humedad: 40,
          timestamp: '2025-07-20T10:30:00Z',
        }),
      [{ what: ['reading', 'updated', readingId], channels: readingChannels(1) }],
    )
  })

  test('deleted goes to the same channels', async () => {
    await expectRouting(
      () => api('DELETE', `/api/v1/readings/${readingId}`),
      [{ what: ['reading', 'deleted', readingId], channels: readingChannels(1) }],
    )
  })
})

const anomalyChannels = (sensor: number) => [
  'anomalies',
  `anomalies:${sensor}`,
  `sensors:${sensor}`,
  'general',
]

describe('anomaly events', () => {
  test('anomaly_detected, updated and deleted go to anomalies, anomalies:<sensor>, sensors:<sensor> and general', async () => {
    const [detected] = await expectRouting(
      () => api('POST', '/api/v1/anomalies', { sensor_id: 2, variable: 'temperatura', value: 60 }),
      [{ what: ['anomaly', 'anomaly_detected', 1], channels: anomalyChannels(2) }],
    )
    expect(detected!.metadata.action).toBe('create_anomaly')
    await expectRouting(
      () => api('PATCH', '/api/v1/anomalies/1', { status: 'acknowledged' }),
      [{ what: ['anomaly', 'updated', 1], channels: anomalyChannels(2) }],
    )
    await expectRouting(
      () => api('PUT', '/api/v1/anomalies/1', { sensor_id: 2, variable: 'humedad', value: 99 }),
      [{ what: ['anomaly', 'updated', 1], channels: anomalyChannels(2) }],
    )
    await expectRouting(
      () => api('DELETE', '/api/v1/anomalies/1'),
      [{ what: ['anomaly', 'deleted', 1], channels: anomalyChannels(2) }],
    )
  })
})

describe('prediction events', () => {
  test('created, prediction_completed and deleted go to predictions, predictions:<sensor>, sensors:<sensor> and general', async () => {
    const channels = ['predictions', 'predictions:1', 'sensors:1', 'general']
    // The forecaster completes (here: fails, sensor 1 has no readings) the request right after POST;
    // a frame that came before the wait started is still found, so the wait cannot miss it.
    await expectRouting(async () => {
      await api('POST', '/api/v1/predictions', {
        sensor_id: 1,
        variable: 'temperatura',
        horizon_minutes: 15,
      })
      await clients
        .get('general')!
        .event((m) => m.event_type === 'prediction_completed' && m.entity_id === 1)
    }, [
      { what: ['prediction', 'created', 1], channels },
      { what: ['prediction', 'prediction_completed', 1], channels },
    ])
    await expectRouting(
      () => api('DELETE', '/api/v1/predictions/1'),
      [{ what: ['prediction', 'deleted', 1], channels }],
    )
  })
})

describe('deletions', () => {
  test('a sensor deleted goes to sensors, sensors:<id> and general', async () => {
    await expectRouting(
      () => api('DELETE', '/api/v1/sensors/3'),
      [{ what: ['sensor', 'deleted', 3], channels: ['sensors', 'sensors:3', 'general'] }],
    )
  })

  test('a location deleted goes to its channels, and each detached sensor updated to the sensor channels', async () => {
    await expectRouting(
      () => api('DELETE', '/api/v1/locations/2'),
      [
        { what: ['location', 'deleted', 2], channels: ['locations', 'locations:2', 'general'] },
        { what: ['sensor', 'updated', 2], channels: ['sensors', 'sensors:2', 'general'] },
      ],
    )
    await expectRouting(
      () => api('DELETE', '/api/v1/locations/3'),
      [{ what: ['location', 'deleted', 3], channels: ['locations', 'locations:3', 'general'] }],
    )
  })
})

describe('system events', () => {
  test('a test event without a channel goes to general only', async () => {
    await expectRouting(
      () => api('POST', '/api/v1/ws/test-event?message=Prueba'),
      [{ what: ['system', 'Prueba'], channels: ['general'] }],
    )
  })

  test('a test event on a channel goes to that channel and general', async () => {
    for (const channel of ['sensors', 'readings:2', 'locations:1', 'predictions:1'])
      await expectRouting(
        () => api('POST', `/api/v1/ws/test-event?channel=${channel}&message=hola-${channel}`),
        [{ what: ['system', `hola-${channel}`], channels: [channel, 'general'] }],
      )
  })
})

describe('a connection on several channels', () => {
  const seqs = (messages: Msg[]) => messages.filter(isEvent).map((m) => m.seq)

  test('given in the URL, gets each event once even when several of its channels match', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'sensors,general,sensors:1' })
    const hello = await client.connected()
    expect(hello.channels).toEqual(['sensors', 'general', 'sensors:1'])
    const general = clients.get('general')!
    const from = general.messages.length
    await api('PATCH', '/api/v1/sensors/1', { nombre: 'tres canales' })
    await api('POST', '/api/v1/readings', { sensor_id: 1, temperatura: 5 })
    await api('PATCH', '/api/v1/sensors/2', { nombre: 'dos canales' })
    await api('POST', '/api/v1/ws/test-event?channel=sensors:1&message=sub')
    await settle(server, client, 'sensors:1')
    await settle(server, general, 'general')
    const expected = seqs(general.messages.slice(from))
    expect(expected).toHaveLength(4)
    expect(seqs(client.messages)).toEqual(expected)
    await client.close()
  })

  test('joined through subscribe actions, gets each event once, and stops after unsubscribe', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'readings' })
    await client.connected()
    for (const channel of ['general', 'sensors:1', 'readings:1']) await client.subscribe(channel)
    const general = clients.get('general')!
    const from = general.messages.length
    await api('POST', '/api/v1/readings', { sensor_id: 1, temperatura: 6 })
    await api('PATCH', '/api/v1/locations/1', { nombre: 'solo general' })
    await settle(server, client, 'readings')
    await settle(server, general, 'general')
    expect(seqs(client.messages)).toEqual(seqs(general.messages.slice(from)))

    await client.unsubscribe('general')
    const mark = client.messages.length
    await api('PATCH', '/api/v1/locations/1', { nombre: 'ya no llega' })
    const reading = await api('POST', '/api/v1/readings', { sensor_id: 1, temperatura: 7 })
    await settle(server, client, 'readings')
    const after = client.messages.slice(mark).filter(isEvent)
    expect(after.map(describeEvent)).toEqual([['reading', 'created', reading.id]])
    await client.close()
  })
})

describe('seq', () => {
  test('grows by one with every event, and every client sees it strictly increasing', async () => {
    const general = clients
      .get('general')!
      .messages.filter((m) => m.type === 'entity_event' || m.type === 'system_event')
    expect(general.length).toBeGreaterThan(50)
    general.forEach((m, i) => i > 0 && expect(m.seq).toBe(general[i - 1]!.seq + 1))
    for (const [, client] of clients) {
      const seqs = client.messages.filter((m) => Number.isInteger(m.seq)).map((m) => m.seq)
      seqs.forEach((seq, i) => i > 0 && expect(seq).toBeGreaterThan(seqs[i - 1]!))
    }
  })
})
