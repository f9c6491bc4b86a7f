// Containment: a client that stops reading, floods, sends oversize frames or stops answering pings
// is closed with the contract's code, counted in /metrics, gone from the stats, and nobody else suffers.
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { metric, settle, type TestServer } from './helpers'
import { RawWs, serversPerTest } from './delivery-kit'

// Real servers and processes on a shared 2-core machine: the 5 s default is too tight.
setDefaultTimeout(30_000)

const start = serversPerTest()

const generalConnections = async (server: TestServer) =>
  (await server.api('GET', '/api/v1/ws/stats/general')).body.connections as number

describe('a client that stops reading', () => {
  test('is closed with 1008 and counted, while a normal client on the same channel gets every event', async () => {
    const server = await start({ WEBSOCKET_BACKPRESSURE_LIMIT: '65536' })
    const normal = await server.ws('/api/v1/ws', { channel: 'general' })
    await normal.connected()
    const stalled = await RawWs.connect(`${server.base}/api/v1/ws?channel=general`)
    stalled.pause()
    expect(await generalConnections(server)).toBe(2)

    // 50 KB events, ten at a time, until the stalled socket's buffer passes the limit.
    let rounds = 0
    while ((await metric(server, 'vigia_ws_dropped_total', 'reason="slow"')) === 0) {
      expect(++rounds).toBeLessThan(200)
      for (let i = 0; i < 10; i++)
        await server.ctx.emitter.system({
          level: 'info',
          message: `bulk ${rounds}.${i}`,
          data: { blob: 'x'.repeat(50_000) },
        })
    }
    // It left the stats the moment it was dropped.
    expect(await generalConnections(server)).toBe(1)

    await settle(server, normal, 'general')
    const got = normal.receivedEvents().map((e) => e.seq as number)
    expect(got.length).toBeGreaterThan(10)
    expect(got).toEqual(got.map((_, i) => got[0]! + i))

    // Read late, the stalled client sees an unbroken run of events, then 1008: resuming loses nothing.
    stalled.resume()
    expect(await stalled.closeFrame()).toMatchObject({ code: 1008 })
    const seen = stalled.messages().filter((m) => m.type === 'system_event')
    expect(seen.length).toBeGreaterThan(0)
    expect(seen.map((m) => m.seq)).toEqual(seen.map((_, i) => seen[0]!.seq + i))
    stalled.end()
    await normal.close()
  }, 60_000)
  test('that falls behind in a burst and then reads again sees an unbroken run, then either the live end or 1008', async () => {
    const server = await start({ WEBSOCKET_BACKPRESSURE_LIMIT: '65536' })
    const slow = await RawWs.connect(`${server.base}/api/v1/ws?channel=general`)
    await slow.next((f) => f.opcode === 1)
    slow.pause()
    // ~15 MB committed in one transaction, so published back to back with no I/O in between (on any
    // database): the paused socket's buffer overflows.
    await server.ctx.emitter.transact(async (_tx, emit) => {
      for (let i = 0; i < 300; i++)
        emit({
          entity_type: 'sensor',
          event_type: 'updated',
          entity_id: 1,
          data: { burst: i, blob: 'x'.repeat(50_000) },
          action: 'burst',
        })
    })
    slow.resume()
    let marker = 0
    for (let i = 0; i < 20; i++)
      marker = (await server.api('POST', `/api/v1/ws/test-event?channel=general&message=after${i}`))
        .body.event.seq
    const last = await slow.next(
      (f) => f.opcode === 8 || (f.opcode === 1 && JSON.parse(f.payload.toString()).seq === marker),
    )
    const seen = slow
      .messages()
      .filter((m) => m.type === 'entity_event' || m.type === 'system_event')
    expect(seen.map((m) => m.seq)).toEqual(seen.map((_, i) => seen[0]!.seq + i))
    if (last.opcode === 8) expect(last.payload.readUInt16BE(0)).toBe(1008)
    else expect(seen.at(-1)!.seq).toBe(marker)
    slow.end()
  }, 60_000)
})

describe('message limits', () => {
  test('a flood gets a rate_limited error, then the socket is closed with 1008', async () => {
    const server = await start({ WEBSOCKET_MESSAGES_PER_SECOND: '5' })
    const client = await server.ws('/api/v1/ws', { channel: 'general' })
    await client.connected()
    for (let i = 0; i < 100; i++) client.send({ action: 'ping' })
    expect(await client.next((m) => m.type === 'error')).toMatchObject({ code: 'rate_limited' })
    expect((await client.closed).code).toBe(1008)
    expect(await metric(server, 'vigia_ws_dropped_total', 'reason="flood"')).toBe(1)
    expect(await generalConnections(server)).toBe(0)
  })

  test('a frame over WEBSOCKET_MAX_MESSAGE_BYTES closes the socket with 1009', async () => {
    const server = await start({ WEBSOCKET_MAX_MESSAGE_BYTES: '1024' })
    const client = await server.ws('/api/v1/ws', { channel: 'general' })
    await client.connected()
    client.send({ action: 'ping', padding: 'x'.repeat(2000) })
    expect((await client.closed).code).toBe(1009)
    expect(await generalConnections(server)).toBe(0)
  })
})

describe('liveness', () => {
  test('a peer that never answers pings is dropped and leaves the stats; one that answers stays', async () => {
    const server = await start({ WEBSOCKET_PING_INTERVAL: '1', WEBSOCKET_PING_TIMEOUT: '1' })
    const silent = await RawWs.connect(`${server.base}/api/v1/ws?channel=general&user_id=ghost`)
    const answering = await server.ws('/api/v1/ws', { channel: 'general', user_id: 'alive' })
    await answering.connected()
    expect(await generalConnections(server)).toBe(2)

    await silent.next((f) => f.opcode === 9)
    await silent.ended
    const stats = (await server.api('GET', '/api/v1/ws/stats/general')).body
    expect(stats.connections).toBe(1)
    expect(stats.users.map((u: { user_id: string }) => u.user_id)).toEqual(['alive'])
    expect(await metric(server, 'vigia_ws_dropped_total', 'reason="ping_timeout"')).toBe(1)
    await settle(server, answering, 'general')
    await answering.close()
  }, 30_000)
})

describe('/metrics', () => {
  test('carries connections, messages, events, drops and HTTP requests by route and status with latency', async () => {
    const server = await start()
    const client = await server.ws('/api/v1/ws', { channel: 'sensors' })
    await client.connected()
    const created = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })
    await server.api('POST', '/api/v1/sensors', { tipo: 7 })
    await server.api('GET', `/api/v1/sensors/${created.body.id}`)
    await server.api('GET', '/api/v1/sensors/999999')
    await server.api('GET', '/no/such/path')
    await client.event()

    const res = await fetch(`${server.base}/metrics`)
    expect(res.headers.get('content-type')).toContain('text/plain')
    const text = await res.text()
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(`${series} `))
      if (!line) throw new Error(`no series ${series} in /metrics`)
      return Number(line.split(' ').at(-1))
    }
    expect(value('vigia_ws_connections')).toBe(1)
    expect(value('vigia_ws_connections_total')).toBe(1)
    expect(value('vigia_events_emitted_total{type="entity_event"}')).toBe(1)
    expect(value('vigia_events_emitted_total{type="system_event"}')).toBe(1)
    expect(value('vigia_ws_messages_sent_total{kind="live"}')).toBe(1)
    expect(value('vigia_ws_dropped_total{reason="slow"}')).toBe(0)
    const http = (method: string, route: string, status: number) =>
      `{method="${method}",route="${route}",status="${status}"}`
    expect(value(`vigia_http_requests_total${http('POST', '/api/v1/sensors/', 201)}`)).toBe(1)
    expect(value(`vigia_http_requests_total${http('POST', '/api/v1/sensors/', 422)}`)).toBe(1)
    expect(value(`vigia_http_requests_total${http('GET', '/api/v1/sensors/:id', 200)}`)).toBe(1)
    expect(value(`vigia_http_requests_total${http('GET', '/api/v1/sensors/:id', 404)}`)).toBe(1)
    expect(value(`vigia_http_requests_total${http('GET', 'unmatched', 404)}`)).toBe(1)
    expect(value(`vigia_http_requests_total${http('GET', '/api/v1/ws', 101)}`)).toBe(1)
    expect(
      value(`vigia_http_request_duration_seconds_count${http('POST', '/api/v1/sensors/', 201)}`),
    ).toBe(1)
    expect(
      text.includes(
        'vigia_http_request_duration_seconds_bucket{le="+Inf",method="POST",route="/api/v1/sensors/",status="201"} 1',
      ),
    ).toBe(true)
    await client.close()
  })
})
