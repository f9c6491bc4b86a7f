// The client library's snapshot option against a real server: every connection, the first and each
// reconnect after a restart, starts from the latest values, then the events after them.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { RealtimeClient } from '../src/client'
import { record, restartableServer, when, type RestartableServer } from './clients-kit'

setDefaultTimeout(30_000)

const FAST = { initialMs: 20, maxMs: 250 }

const clients: RealtimeClient[] = []
const track = (client: RealtimeClient) => (clients.push(client), client)
let server: RestartableServer | undefined
afterEach(async () => {
  await Promise.all(clients.splice(0).map((c) => c.close()))
  await server?.cleanup()
})

describe('a realtime client with snapshot: true', () => {
  test('with snapshot: true every connection starts from the latest values, then the events after them, across a restart', async () => {
    const restartable = await restartableServer()
    server = restartable
    const sensor = (await restartable.api('POST', '/api/v1/sensors', { tipo: 'aire', modelo: 'm' }))
      .body.id as number
    await restartable.api('POST', '/api/v1/readings', {
      sensor_id: sensor,
      values: { co2: 400 },
      timestamp: '2025-07-20T10:00:00Z',
    })
    const client = track(
      new RealtimeClient({
        url: restartable.base,
        channels: [`sensors:${sensor}`],
        snapshot: true,
        reconnect: FAST,
      }),
    )
    const events = record(client)
    const first = when(client, 'snapshot')
    await client.connect()
    const snapshot = await first
    expect(snapshot.data).toEqual([
      {
        sensor_id: sensor,
        status: 'online',
        last_seen: expect.any(String),
        values: { co2: { value: 400, timestamp: '2025-07-20T10:00:00Z' } },
      },
    ])
    expect(client.lastSeq).toBe(snapshot.seq)
    const live = when(client, 'event', (e) => e.type === 'entity_event')
    await restartable.api('POST', '/api/v1/readings', { sensor_id: sensor, values: { co2: 410 } })
    expect((await live).seq).toBeGreaterThan(snapshot.seq)

    const dropped = when(client, 'disconnected')
    await restartable.stop()
    await dropped
    const aside = await restartable.startAside()
    const away = await aside.api('POST', '/api/v1/readings', {
      sensor_id: sensor,
      values: { co2: 999, lux: 5 },
    })
    await aside.stop()
    const second = when(client, 'snapshot')
    await restartable.start()
    const again = await second
    // The reading made while the client was away is in the snapshot, not replayed as an event.
    expect(again.data[0]!.values).toEqual({
      co2: { value: 999, timestamp: away.body.timestamp },
      lux: { value: 5, timestamp: away.body.timestamp },
    })
    const marker = when(client, 'event', (e) => e.type === 'system_event' && e.message === 'fin')
    await restartable.api('POST', `/api/v1/ws/test-event?channel=sensors:${sensor}&message=fin`)
    await marker
    expect(
      events.filter(
        (e) =>
          e.type === 'entity_event' && e.entity_type === 'reading' && e.data.values.co2 === 999,
      ),
    ).toEqual([])
    expect(events.at(-1)).toMatchObject({ type: 'system_event', message: 'fin' })
    expect(events.at(-1)!.seq).toBeGreaterThan(again.seq)
  }, 30_000)
})
