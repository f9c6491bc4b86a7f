// The original specification's examples, exactly as written there, against a real server.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { ISO_Z } from './assert'
import { startTestServer, type TestServer } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

describe('the original examples', () => {
  test('creating a sensor with the original curl body answers 201 and sends the original event to sensors and general', async () => {
    const sensors = await server.ws('/api/v1/ws', { channel: 'sensors' })
    const general = await server.ws('/api/v1/ws', { channel: 'general' })
    const hello = await sensors.connected()
    expect(hello).toMatchObject({ type: 'connection', status: 'connected', channel: 'sensors' })
    expect(hello.timestamp).toMatch(ISO_Z)
    await general.connected()

    const res = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
    })
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject({ tipo: 'temperatura', modelo: 'DHT22' })
    expect(res.body.created_at).toMatch(ISO_Z)

    for (const client of [sensors, general]) {
      const event = await client.event((m) => m.entity_type === 'sensor')
      expect(event).toMatchObject({
        type: 'entity_event',
        entity_type: 'sensor',
        event_type: 'created',
        entity_id: res.body.id,
        data: {
          id: res.body.id,
          tipo: 'temperatura',
          modelo: 'DHT22',
          created_at: res.body.created_at,
        },
        metadata: { action: 'create_sensor' },
      })
      expect(event.timestamp).toMatch(ISO_Z)
      expect(Number.isInteger(event.seq)).toBe(true)
    }
    await sensors.close()
    await general.close()
  })

  test('creating a reading with the original curl body stores it and announces it on readings', async () => {
    const sensor = await server.api('POST', '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
    })
    const readings = await server.ws('/api/v1/ws', { channel: 'readings' })
    await readings.connected()
    const body = {
      sensor_id: sensor.body.id,
      temperatura: 23.5,
      humedad: 65.2,
      timestamp: '2025-07-20T10:30:00Z',
    }
    const res = await server.api('POST', '/api/v1/readings', body)
    expect(res.status).toBe(201)
    expect(res.body).toMatchObject(body)
    const event = await readings.event()
    expect(event).toMatchObject({
      type: 'entity_event',
      entity_type: 'reading',
      event_type: 'created',
      entity_id: res.body.id,
      data: body,
      metadata: { action: 'create_reading' },
    })
    await readings.close()
  })

  test('the test-event endpoint sends a system_event of level info to its channel', async () => {
    const client = await server.ws('/api/v1/ws', { channel: 'general' })
    await client.connected()
    const res = await server.api('POST', '/api/v1/ws/test-event?channel=general&message=Prueba')
    expect(res.status).toBe(200)
    const event = await client.event((m) => m.type === 'system_event' && m.message === 'Prueba')
    expect(event).toMatchObject({ type: 'system_event', level: 'info', message: 'Prueba' })
    expect(typeof event.data).toBe('object')
    expect(event.timestamp).toMatch(ISO_Z)
    await client.close()
  })

  test('the stats endpoints answer the original shape', async () => {
    const a = await server.ws('/api/v1/ws', { channel: 'general', user_id: 'user1' })
    const b = await server.ws('/api/v1/ws', { channel: 'general' })
    const c = await server.ws('/api/v1/ws', { channel: 'sensors', user_id: 'user2' })
    await Promise.all([a.connected(), b.connected(), c.connected()])
    const all = await server.api('GET', '/api/v1/ws/stats')
    expect(all.status).toBe(200)
    expect(all.body.total_channels).toBe(2)
    expect(all.body.channels.general.connections).toBe(2)
    expect(all.body.channels.general.users).toEqual([
      { user_id: 'user1', connected_at: expect.stringMatching(ISO_Z) },
    ])
    expect(all.body.channels.sensors).toEqual({
      connections: 1,
      users: [{ user_id: 'user2', connected_at: expect.stringMatching(ISO_Z) }],
    })
    const one = await server.api('GET', '/api/v1/ws/stats/sensors')
    expect(one.status).toBe(200)
    expect(one.body).toMatchObject({ connections: 1, users: [{ user_id: 'user2' }] })
    await Promise.all([a.close(), b.close(), c.close()])
  })
})
