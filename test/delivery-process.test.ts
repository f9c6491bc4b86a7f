// The server as a process: SIGTERM/SIGINT drain cleanly and exit 0; kill -9 loses no acknowledged write.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { api, tempDir, WsClient } from './helpers'

// Real servers and processes on a shared 2-core machine: the 5 s default is too tight.
setDefaultTimeout(30_000)

const ROOT = join(import.meta.dir, '..')
const dirs: string[] = []
afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true })
})

/** Runs `bun src/index.ts` on port 0 with the given database; resolves once it is listening. */
async function spawnServer(dbPath: string) {
  const proc = Bun.spawn(['bun', 'src/index.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${dbPath}`,
      LOG_LEVEL: 'info',
      JWT_SECRET: 'process-test-secret-process-test-secret',
    },
    stdout: 'ignore',
    stderr: 'pipe',
  })
  let log = ''
  const reader = proc.stderr.getReader()
  const decoder = new TextDecoder()
  while (!/listening on (http:\/\/\S+)/.test(log)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`server exited before listening:\n${log}`)
    log += decoder.decode(value)
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  const rest = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return log
      log += decoder.decode(value)
    }
  })()
  const base = log.match(/listening on (http:\/\/\S+)/)![1]!
  return {
    proc,
    base,
    port: Number(new URL(base).port),
    api: (method: string, path: string, body?: unknown) => api(base, method, path, body),
    ws: (query: string) => WsClient.connect(`${base.replace('http', 'ws')}/api/v1/ws?${query}`),
    log: () => rest,
  }
}

const readingBody = (sensorId: number, i: number) => ({
  sensor_id: sensorId,
  temperatura: 20 + i / 100,
  humedad: 55,
  timestamp: '2025-07-20T10:30:00Z',
})

/**
 * Starts a request whose handler is already running when this resolves: the head goes out with
 * `Expect: 100-continue` and the server's `100 Continue` proves it is reading the body. `finish()`
 * sends the body and resolves with the final response.
 */
async function requestInFlight(port: number, path: string, body: string) {
  let received = ''
  const started = Promise.withResolvers<void>()
  const done = Promise.withResolvers<string>()
  const socket = await Bun.connect({
    hostname: '127.0.0.1',
    port,
    socket: {
      data: (_, data) => {
        received += Buffer.from(data).toString()
        if (received.startsWith('HTTP/1.1 100')) started.resolve()
      },
      close: () => done.resolve(received.replace(/^HTTP\/1\.1 100 Continue\r\n\r\n/, '')),
      error: () => done.resolve(''),
    },
  })
  socket.write(
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${Buffer.byteLength(body)}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n`,
  )
  await started.promise
  return {
    finish() {
      socket.write(body)
      return done.promise
    },
  }
}

describe('graceful shutdown', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const)
    test(`on ${signal}: clients get a warning system_event then 1001, an in-flight request completes, exit code 0`, async () => {
      const dir = tempDir()
      dirs.push(dir)
      const db = join(dir, 'shutdown.db')
      const server = await spawnServer(db)
      const sensor = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })
      const onGeneral = await server.ws('channel=general')
      const onSensors = await server.ws('channel=sensors')
      const hello = await onGeneral.connected()
      await onSensors.connected()
      const inFlight = await requestInFlight(
        server.port,
        '/api/v1/readings',
        JSON.stringify(readingBody(sensor.body.id, 1)),
      )

      server.proc.kill(signal)
      for (const client of [onGeneral, onSensors]) {
        const warning = await client.event((m) => m.type === 'system_event')
        expect(warning).toMatchObject({ level: 'warning', data: { reason: 'shutdown' } })
      }
      // The request started before the signal still gets its answer.
      const answer = await inFlight.finish()
      expect(answer).toStartWith('HTTP/1.1 201')
      const stored = JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4))
      expect((await onGeneral.closed).code).toBe(1001)
      expect((await onSensors.closed).code).toBe(1001)
      expect(await server.proc.exited).toBe(0)
      expect(await server.log()).toContain('stopped')

      // What it answered is on disk, and its event replays after a restart.
      const again = await spawnServer(db)
      expect((await again.api('GET', `/api/v1/readings/${stored.id}`)).body).toEqual(stored)
      const resumed = await again.ws(
        `channel=readings&since=${hello.last_seq}&epoch=${hello.epoch}`,
      )
      expect(await resumed.connected()).toMatchObject({ recovered: true, epoch: hello.epoch })
      expect(await resumed.event()).toMatchObject({ entity_type: 'reading', entity_id: stored.id })
      again.proc.kill('SIGTERM')
      expect(await again.proc.exited).toBe(0)
    })
})

describe('durability', () => {
  test('every reading that got its 201 survives kill -9 a moment later, and its event replays after restart', async () => {
    const dir = tempDir()
    dirs.push(dir)
    const db = join(dir, 'crash.db')
    const server = await spawnServer(db)
    const sensor = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })
    const client = await server.ws(`channel=readings:${sensor.body.id}`)
    const hello = await client.connected()
    await client.close()

    // 200 writes in flight; the process is killed the moment the 50th acknowledgement arrives.
    const acknowledged: Record<string, any>[] = []
    const killed = Promise.withResolvers<void>()
    const writes = Array.from({ length: 200 }, (_, i) =>
      server
        .api('POST', '/api/v1/readings', readingBody(sensor.body.id, i))
        .then((res) => {
          if (res.status !== 201) return
          acknowledged.push(res.body)
          if (acknowledged.length === 50) {
            server.proc.kill('SIGKILL')
            killed.resolve()
          }
        })
        .catch(() => undefined),
    )
    await killed.promise
    const ackedAtKill = [...acknowledged]
    await Promise.all(writes)
    expect(await server.proc.exited).not.toBe(0)

    const again = await spawnServer(db)
    for (const reading of ackedAtKill)
      expect((await again.api('GET', `/api/v1/readings/${reading.id}`)).body).toEqual(reading)
    const resumed = await again.ws(
      `channel=readings:${sensor.body.id}&since=${hello.last_seq}&epoch=${hello.epoch}`,
    )
    expect(await resumed.connected()).toMatchObject({ recovered: true, epoch: hello.epoch })
    const stored = (
      await again.api('GET', `/api/v1/readings?sensor_id=${sensor.body.id}&limit=500`)
    ).body as { id: number }[]
    const events = await resumed.events(stored.length)
    expect(events.every((e, i) => e.seq > (events[i - 1]?.seq ?? hello.last_seq))).toBe(true)
    expect(events.map((e) => e.entity_id).sort((a, b) => a - b)).toEqual(
      stored.map((r) => r.id).sort((a, b) => a - b),
    )
    for (const reading of ackedAtKill)
      expect(events.find((e) => e.entity_id === reading.id)?.data).toEqual(reading)
    again.proc.kill('SIGTERM')
    expect(await again.proc.exited).toBe(0)
  })
})
