// The AsyncAPI document of the WebSocket API: valid for the AsyncAPI parser, complete (CONTRACT §4, §7 and
// the close codes), true to what real sockets receive, and rendered offline at /asyncapi.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { Parser } from '@asyncapi/parser'
import Ajv from 'ajv'
import addFormats from 'ajv-formats'
import { launchChromium } from './clients-kit'
import { startTestServer, type TestServer } from './helpers'

setDefaultTimeout(30_000)

type Json = Record<string, any>

let server: TestServer
let doc: Json

beforeAll(async () => {
  server = await startTestServer()
  const res = await fetch(`${server.base}/asyncapi.json`)
  expect(res.status).toBe(200)
  doc = await res.json()
})
afterAll(() => server.stop())

const payloadsOf = (operation: string) =>
  (doc.operations[operation].messages as { $ref: string }[]).map((ref) => {
    const name = ref.$ref.split('/').pop()!
    return { name, payload: doc.components.messages[name].payload as Json }
  })

describe('GET /asyncapi.json', () => {
  test('parses with @asyncapi/parser as AsyncAPI 3 with no error or warning', async () => {
    const { document, diagnostics } = await new Parser().parse(JSON.stringify(doc))
    const problems = diagnostics
      .filter((d) => d.severity <= 1)
      .map((d) => `${d.code} ${d.path.join('/')}: ${d.message}`)
    expect(problems).toEqual([])
    expect(document).toBeDefined()
    expect(document!.version()).toMatch(/^3\./)
    expect(
      document!
        .channels()
        .all()
        .map((c) => c.address()),
    ).toEqual(['/api/v1/ws', '/api/v1/ws/secure'])
  })

  test('describes every server message of CONTRACT §4 and §7, every client action, and every close code', () => {
    const sent = payloadsOf('eventsSend').map((m) => m.payload.properties.type.const)
    expect(sent).toEqual(
      expect.arrayContaining([
        'entity_event',
        'system_event',
        'connection',
        'snapshot',
        'error',
        'pong',
      ]),
    )
    const entities = payloadsOf('eventsSend')
      .filter((m) => m.payload.properties.type.const === 'entity_event')
      .map((m) => m.payload.properties.entity_type.const)
    expect(entities.sort()).toEqual(['anomaly', 'location', 'prediction', 'reading', 'sensor'])
    const actions = payloadsOf('eventsReceive').map((m) => m.payload.properties.action.const)
    expect(actions.sort()).toEqual(['ping', 'refresh', 'subscribe', 'unsubscribe'])
    const snapshot = doc.components.messages.snapshot.payload
    expect(snapshot.required).toEqual(['type', 'seq', 'data'])
    expect(snapshot.properties.data.items.properties.values.additionalProperties.required).toEqual([
      'value',
      'timestamp',
    ])
    for (const channel of Object.values<Json>(doc.channels)) {
      expect(Object.keys(channel['x-close-codes']).map(Number)).toEqual(
        expect.arrayContaining([1001, 1008, 1009, 1013, 4400, 4401, 4403]),
      )
      expect(channel.description).toContain('| 4403 |')
      expect(Object.keys(channel.bindings.ws.query.properties)).toEqual(
        expect.arrayContaining(['channel', 'since', 'epoch', 'token', 'snapshot']),
      )
    }
    expect(doc.channels.secureEvents.bindings.ws.query.required).toEqual(['token'])
  })

  test('every frame a real socket receives matches one of the documented server messages, and the actions sent match the client messages', async () => {
    const ajv = new Ajv({ strict: false, allErrors: true })
    addFormats(ajv)
    const server_ = payloadsOf('eventsSend').map((m) => ({ ...m, check: ajv.compile(m.payload) }))
    const client_ = payloadsOf('eventsReceive').map((m) => ({
      ...m,
      check: ajv.compile(m.payload),
    }))
    const matches = (kinds: typeof server_, frame: unknown) =>
      kinds.filter((kind) => kind.check(frame)).map((kind) => kind.name)

    const client = await server.ws('/api/v1/ws', { channel: 'general' })
    await client.next((m) => m.type === 'connection')
    const actions: Json[] = [
      { action: 'subscribe', channel: 'sensors' },
      { action: 'unsubscribe', channel: 'sensors' },
      { action: 'ping' },
      { action: 'refresh', token: 'x' },
    ]
    for (const action of actions) {
      expect({ action, matches: matches(client_, action) }).toEqual({
        action,
        matches: [expect.any(String)],
      })
      client.send(action)
    }
    client.send({ action: 'subscribe', channel: 'nope' })
    const sensor = (
      await server.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: 'DHT22' })
    ).body
    const location = (await server.api('POST', '/api/v1/locations', { nombre: 'Sala' })).body
    await server.api('PATCH', `/api/v1/sensors/${sensor.id}`, { location_id: location.id })
    const reading = (
      await server.api('POST', '/api/v1/readings', { sensor_id: sensor.id, temperatura: 21.5 })
    ).body
    await server.api('POST', '/api/v1/anomalies', {
      sensor_id: sensor.id,
      variable: 'temperatura',
      value: 99,
    })
    await server.api('POST', '/api/v1/predictions', {
      sensor_id: sensor.id,
      variable: 'temperatura',
      horizon_minutes: 5,
    })
    await client.next((m) => m.type === 'entity_event' && m.event_type === 'prediction_completed')
    await server.api('DELETE', `/api/v1/readings/${reading.id}`)
    await server.api('DELETE', `/api/v1/locations/${location.id}`)
    await server.api('POST', '/api/v1/ws/test-event?channel=general&message=fin')
    await client.next((m) => m.type === 'system_event' && m.message === 'fin')

    const unmatched = client.messages
      .filter((frame) => matches(server_, frame).length !== 1)
      .map((frame) => JSON.stringify(frame).slice(0, 200))
    expect(unmatched).toEqual([])
    const seen = new Set(client.messages.map((m) => `${m.type} ${m.entity_type ?? ''}`.trim()))
    expect([...seen]).toEqual(
      expect.arrayContaining([
        'connection',
        'pong',
        'error',
        'system_event',
        'entity_event sensor',
        'entity_event location',
        'entity_event reading',
        'entity_event anomaly',
        'entity_event prediction',
      ]),
    )
    client.close()
  })
})

describe('GET /asyncapi', () => {
  test('renders the document in Chromium from this server alone', async () => {
    const browser = await launchChromium()
    try {
      const page = await browser.newPage()
      const elsewhere: string[] = []
      page.on('request', (request) => {
        if (!request.url().startsWith(server.base)) elsewhere.push(request.url())
      })
      const res = await page.goto(`${server.base}/asyncapi`)
      expect(res?.status()).toBe(200)
      await page.waitForFunction(() => document.body.innerText.includes('/api/v1/ws/secure'))
      const text = await page.textContent('body')
      expect(text).toContain('Vigía WebSocket API')
      for (const name of ['snapshot', 'subscribe', 'systemEvent', 'sensorEvent'])
        expect(text).toContain(name)
      expect(elsewhere).toEqual([])
    } finally {
      await browser.close()
    }
  }, 90_000)
})
