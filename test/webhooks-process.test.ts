// Webhook deliveries survive kill -9: the outbox is on disk, a restarted server sends what was pending,
// in order, and sends again only what a receiver answered 2xx just before the kill (not yet recorded).
// Runs on SQLite and on PostgreSQL (the restarted instance keeps its INSTANCE_ID and takes its leases back).
// And https through the pinned address: the certificate is checked against the URL's host name.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { api, createTestDatabase, tempDir } from './helpers'
import { startReceiver, verify } from './webhook-kit'

setDefaultTimeout(60_000)

const ROOT = join(import.meta.dir, '..')
const ADMIN_PASSWORD = 'process-admin-password'
const cleanups: (() => unknown)[] = []
afterAll(async () => {
  for (const cleanup of cleanups) await cleanup()
})

/** Runs `bun src/index.ts` on port 0; resolves once it is listening. */
async function spawnServer(databaseUrl: string, extraEnv: Record<string, string> = {}) {
  const proc = Bun.spawn(['bun', 'src/index.ts'], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      DATABASE_URL: databaseUrl,
      INSTANCE_ID: 'webhook-crash-test',
      LOG_LEVEL: 'info',
      ADMIN_PASSWORD,
      JWT_SECRET: 'process-test-secret-process-test-secret',
      ...extraEnv,
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
  void (async () => {
    for (;;) if ((await reader.read()).done) return
  })()
  const base = log.match(/listening on (http:\/\/\S+)/)![1]!
  const login = await api(base, 'POST', '/auth/login', {
    username: 'admin',
    password: ADMIN_PASSWORD,
  })
  const auth = { authorization: `Bearer ${login.body.access_token}` }
  return {
    proc,
    base,
    api: (method: string, path: string, body?: unknown) => api(base, method, path, body, auth),
  }
}

for (const database of ['sqlite', 'postgres'] as const)
  describe(`on ${database}`, () => {
    test('kill -9 with deliveries pending: all are delivered after the restart, in seq order, none twice unless its 2xx was not yet recorded', async () => {
      let url: string
      if (database === 'sqlite') {
        const dir = tempDir()
        cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
        url = `sqlite:${join(dir, 'crash.db')}`
      } else {
        const db = await createTestDatabase()
        cleanups.push(db.drop)
        url = db.url
      }
      // Slow at first (so the kill lands mid-stream), fast after the restart.
      let delay = 15
      const receiver = startReceiver(() => Bun.sleep(delay).then(() => 200))
      cleanups.push(receiver.stop)
      const first = await spawnServer(url)
      const sensor = (await first.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })).body
        .id
      const hook = await first.api('POST', '/api/v1/webhooks', {
        url: `${receiver.url}/crash`,
        channels: [`readings:${sensor}`],
      })
      expect(hook.status).toBe(201)
      const batch = Array.from({ length: 200 }, (_, i) => ({ sensor_id: sensor, temperatura: i }))
      const stored = await first.api('POST', '/api/v1/readings/batch', batch)
      expect(stored.status).toBe(201)
      await receiver.until(30)
      first.proc.kill('SIGKILL')
      await first.proc.exited
      const beforeKill = receiver.received.length
      expect(beforeKill).toBeLessThan(150)

      delay = 0
      const second = await spawnServer(url)
      await receiver.until(200, () => true, 30_000)
      const distinct = new Map<string, number>()
      for (const r of receiver.received) distinct.set(r.id, (distinct.get(r.id) ?? 0) + 1)
      await Bun.sleep(300)
      // Every event delivered; in seq order when each webhook-id is taken at its first arrival.
      const firsts = receiver.received.filter(
        (r, i, all) => all.findIndex((o) => o.id === r.id) === i,
      )
      expect(firsts).toHaveLength(200)
      const entityIds = firsts.map((r) => verify(hook.body.secret, r).entity_id)
      expect(entityIds).toEqual(stored.body.map((r: { id: number }) => r.id))
      // Only the last ones answered before the kill came twice (successes are recorded every 100 ms),
      // and only once more.
      const twice = [...distinct].filter(([, n]) => n > 1).map(([id]) => id)
      const before = receiver.received.slice(0, beforeKill).map((r) => r.id)
      for (const id of twice) expect(before.indexOf(id)).toBeGreaterThanOrEqual(before.length - 20)
      expect([...distinct.values()].every((n) => n <= 2)).toBe(true)
      expect(receiver.received.length).toBe(200 + twice.length)
      const log = await second.api('GET', `/api/v1/webhooks/${hook.body.id}/deliveries?limit=1000`)
      expect(log.body).toHaveLength(200)
      expect(log.body.every((d: { status: string }) => d.status === 'delivered')).toBe(true)
      second.proc.kill('SIGTERM')
      expect(await second.proc.exited).toBe(0)
    })
  })

describe('https endpoints', () => {
  test('the connection goes to the checked address, and the certificate must be valid for the URL’s host', async () => {
    const dir = tempDir()
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const certFor = (name: string) => {
      const [key, cert] = [join(dir, `${name}.key`), join(dir, `${name}.crt`)]
      const made = Bun.spawnSync([
        'openssl',
        'req',
        '-x509',
        '-newkey',
        'rsa:2048',
        '-nodes',
        '-days',
        '1',
        '-keyout',
        key,
        '-out',
        cert,
        '-subj',
        `/CN=${name}`,
        '-addext',
        `subjectAltName=DNS:${name}`,
      ])
      if (made.exitCode !== 0) throw new Error(`openssl failed: ${made.stderr.toString()}`)
      return { key: Bun.file(key), cert: Bun.file(cert), path: cert }
    }
    const good = certFor('localhost')
    const wrong = certFor('elsewhere.test')
    const received: string[] = []
    const serve = (tls: { key: ReturnType<typeof Bun.file>; cert: ReturnType<typeof Bun.file> }) =>
      Bun.serve({
        port: 0,
        hostname: '127.0.0.1',
        tls,
        async fetch(req) {
          received.push(`${req.headers.get('host')} ${await req.text()}`)
          return new Response('ok')
        },
      })
    const valid = serve(good)
    const invalid = serve(wrong)
    cleanups.push(
      () => valid.stop(true),
      () => invalid.stop(true),
    )
    // The server trusts both self-signed certificates, as it would a public CA's.
    const bundle = join(dir, 'ca.pem')
    await Bun.write(bundle, (await good.cert.text()) + (await wrong.cert.text()))
    const server = await spawnServer(`sqlite:${join(dir, 'tls.db')}`, {
      NODE_EXTRA_CA_CERTS: bundle,
    })
    try {
      const ok = await server.api('POST', '/api/v1/webhooks', {
        url: `https://localhost:${valid.port}/hook`,
      })
      const sent = await server.api('POST', `/api/v1/webhooks/${ok.body.id}/test`)
      expect(sent.body).toMatchObject({ delivered: true, delivery: { response_status: 200 } })
      expect(received).toHaveLength(1)
      expect(received[0]).toStartWith(`localhost:${valid.port} {"type":"system_event"`)
      // A certificate for another name is refused even though the address is allowed.
      const bad = await server.api('POST', '/api/v1/webhooks', {
        url: `https://localhost:${invalid.port}/hook`,
      })
      const refused = await server.api('POST', `/api/v1/webhooks/${bad.body.id}/test`)
      expect(refused.body).toMatchObject({ delivered: false, delivery: { response_status: null } })
      expect(refused.body.delivery.last_error).toContain('CERT')
      expect(received).toHaveLength(1)
    } finally {
      server.proc.kill('SIGTERM')
      await server.proc.exited
    }
  })
})
