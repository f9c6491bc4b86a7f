// Test kit: a real server on port 0 with its own temporary database, a JSON client, and a WebSocket
// client that waits on messages (never on sleeps).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import postgres from 'postgres'
import { loadConfig, parseDatabaseUrl } from '../src/config'
import { openDatabase, type Database } from '../src/db'
import { createLogger, type Logger } from '../src/lib/logger'
import { startServer } from '../src/server'
import { requireRedis } from './infra'

export type TestServer = Awaited<ReturnType<typeof startTestServer>>

export function tempDir(prefix = 'vigia-test-') {
  return mkdtempSync(join(tmpdir(), prefix))
}

/** `TEST_DATABASE=postgres` puts every test server on a fresh PostgreSQL database (default: SQLite). */
export const TEST_DATABASE: 'sqlite' | 'postgres' =
  process.env.TEST_DATABASE === 'postgres' ? 'postgres' : 'sqlite'
export const TEST_POSTGRES_URL =
  process.env.TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test'
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379'

let admin: postgres.Sql | undefined

/**
 * Creates an empty PostgreSQL database of its own (parallel runs never share one) and returns its URL;
 * `drop()` removes it. Fails loudly when PostgreSQL cannot be reached: these tests never skip.
 */
export async function createTestDatabase() {
  if (!admin) {
    admin = postgres(TEST_POSTGRES_URL, { max: 2, idle_timeout: 1, onnotice: () => {} })
    await dropOrphanDatabases(admin).catch(() => undefined)
  }
  const name = `vigia_test_${process.pid}_${crypto.randomUUID().slice(0, 8)}`
  try {
    await admin.unsafe(`CREATE DATABASE "${name}"`)
  } catch (error) {
    throw new Error(
      `PostgreSQL at ${TEST_POSTGRES_URL} is not usable (${String(error)}); start it (.ci/run does) or set TEST_POSTGRES_URL.`,
    )
  }
  const url = new URL(TEST_POSTGRES_URL)
  url.pathname = `/${name}`
  return {
    name,
    url: url.toString(),
    drop: async () => {
      await admin!.unsafe(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`)
    },
  }
}

/** The storage layer alone on one database: SQLite in memory, or a fresh PostgreSQL database. */
export async function openTestStorage(
  dialect: 'sqlite' | 'postgres',
): Promise<{ db: Database; close(): Promise<void> }> {
  if (dialect === 'sqlite') {
    const db = await openDatabase(parseDatabaseUrl('sqlite::memory:'))
    return { db, close: () => db.close() }
  }
  const pg = await createTestDatabase()
  const db = await openDatabase(parseDatabaseUrl(pg.url))
  return {
    db,
    async close() {
      await db.close()
      await pg.drop()
    },
  }
}

/** Drops the test databases of test processes that died before dropping them (named after their pid). */
async function dropOrphanDatabases(sql: postgres.Sql) {
  const rows = await sql<{ datname: string }[]>`
    select datname from pg_database where datname like 'vigia\_test\_%'`
  for (const { datname } of rows) {
    const pid = Number(datname.split('_')[2])
    if (!Number.isInteger(pid) || pid === process.pid) continue
    try {
      process.kill(pid, 0)
    } catch {
      await sql.unsafe(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`)
    }
  }
}

/** The PostgreSQL database of each test folder, so a server restarted on the same `dir` finds its data. */
const databaseOf = new Map<string, Awaited<ReturnType<typeof createTestDatabase>>>()

/**
 * Starts a real server (port 0, fresh SQLite file; a fresh PostgreSQL database under
 * TEST_DATABASE=postgres, or with `postgres` whatever TEST_DATABASE says) with the given environment on
 * top of test defaults; `log` replaces the logger (to read what the server logs), `dir` reuses a
 * database folder.
 */
export async function startTestServer(
  env: Record<string, string> = {},
  options: { log?: Logger; dir?: string; postgres?: boolean } = {},
) {
  const dir = options.dir ?? tempDir()
  let pg = env.DATABASE_URL ? undefined : databaseOf.get(dir)
  if ((options.postgres || TEST_DATABASE === 'postgres') && !env.DATABASE_URL && !pg) {
    pg = await createTestDatabase()
    databaseOf.set(dir, pg)
  }
  const dropDatabase = async () => {
    if (!pg) return
    databaseOf.delete(dir)
    await pg.drop()
  }
  const config = loadConfig({
    DATABASE_URL: pg?.url ?? `sqlite:${join(dir, 'test.db')}`,
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    JWT_SECRET: 'test-secret-test-secret-test-secret!',
    ...env,
  })
  const running = await startServer(config, options.log ?? createLogger(config.logLevel)).catch(
    async (error) => {
      await dropDatabase()
      throw error
    },
  )
  const base = running.url
  let stopped = false
  return {
    ...running,
    dir,
    base,
    config,
    ws: (
      path = '/api/v1/ws',
      query: Record<string, string | number> = {},
      headers?: Record<string, string>,
    ) => {
      const qs = new URLSearchParams(Object.entries(query).map(([k, v]) => [k, String(v)]))
      const suffix = qs.size > 0 ? `?${qs}` : ''
      return WsClient.connect(`${base.replace(/^http/, 'ws')}${path}${suffix}`, headers)
    },
    api: (method: string, path: string, body?: unknown, headers: Record<string, string> = {}) =>
      api(base, method, path, body, headers),
    async stop(keepFiles = false) {
      if (stopped) return
      stopped = true
      await running.stop()
      if (keepFiles) return
      await dropDatabase()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface ApiResponse<T = any> {
  status: number
  body: T
  headers: Headers
}

/** fetch with a JSON body (or a raw string, sent as is) and a parsed JSON answer. */
export async function api<T = any>(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<ApiResponse<T>> {
  const init: RequestInit = { method, headers: { ...headers } }
  if (body !== undefined) {
    init.body = typeof body === 'string' ? body : JSON.stringify(body)
    ;(init.headers as Record<string, string>)['content-type'] ??= 'application/json'
  }
  const res = await fetch(`${base}${path}`, init)
  const text = await res.text()
  let parsed: unknown = text
  try {
    parsed = text ? JSON.parse(text) : undefined
  } catch {}
  return { status: res.status, body: parsed as T, headers: res.headers }
}

type Msg = Record<string, any>

/**
 * A real WebSocket client. Every frame is kept in arrival order; `next(pred)` returns the first
 * unconsumed frame that matches, waiting for it when needed.
 */
export class WsClient {
  readonly messages: Msg[] = []
  private consumed = new Set<number>()
  private waiters: { pred: (m: Msg) => boolean; resolve: (m: Msg) => void }[] = []
  readonly closed: Promise<{ code: number; reason: string }>
  private constructor(readonly socket: WebSocket) {
    this.closed = new Promise((resolve) => {
      socket.addEventListener('close', (e) => {
        resolve({ code: e.code, reason: e.reason })
      })
    })
    socket.addEventListener('message', (e) => {
      const msg = JSON.parse(String(e.data)) as Msg
      const index = this.messages.push(msg) - 1
      const waiter = this.waiters.find((w) => w.pred(msg))
      if (waiter) {
        this.consumed.add(index)
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.resolve(msg)
      }
    })
  }

  /** Opens a socket; resolves once the handshake is done (use `connected()` for the greeting). */
  static connect(url: string, headers?: Record<string, string>): Promise<WsClient> {
    // Bun's WebSocket also takes { headers } (Origin, X-Forwarded-For), which the DOM typing lacks.
    const WithHeaders = WebSocket as unknown as new (
      url: string,
      o: { headers: object },
    ) => WebSocket
    const socket = headers ? new WithHeaders(url, { headers }) : new WebSocket(url)
    const client = new WsClient(socket)
    return new Promise((resolve, reject) => {
      socket.addEventListener('open', () => resolve(client), { once: true })
      socket.addEventListener('error', () => reject(new Error(`WebSocket ${url} failed`)), {
        once: true,
      })
    })
  }

  /** The first unconsumed message that matches, waiting up to `timeout` ms. */
  next(pred: (m: Msg) => boolean = () => true, timeout = 5000): Promise<Msg> {
    const index = this.messages.findIndex((m, i) => !this.consumed.has(i) && pred(m))
    if (index >= 0) {
      this.consumed.add(index)
      return Promise.resolve(this.messages[index]!)
    }
    return new Promise((resolve, reject) => {
      const waiter = { pred, resolve: (m: Msg) => (clearTimeout(timer), resolve(m)) }
      const timer = setTimeout(() => {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        reject(
          new Error(
            `no matching WebSocket message within ${timeout} ms; got ${JSON.stringify(this.messages).slice(0, 2000)}`,
          ),
        )
      }, timeout)
      this.waiters.push(waiter)
    })
  }

  /** The greeting: {"type":"connection","status":"connected",…}. */
  connected() {
    return this.next((m) => m.type === 'connection' && m.status === 'connected')
  }

  /** Next entity or system event (skips connection acks, pongs and errors). */
  event(pred: (m: Msg) => boolean = () => true, timeout?: number) {
    return this.next(
      (m) => (m.type === 'entity_event' || m.type === 'system_event') && pred(m),
      timeout,
    )
  }

  /** Collects `count` events in arrival order. */
  async events(count: number, pred: (m: Msg) => boolean = () => true, timeout = 10_000) {
    const out: Msg[] = []
    for (let i = 0; i < count; i++) out.push(await this.event(pred, timeout))
    return out
  }

  send(message: unknown) {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message))
  }

  /** Sends an action and waits for the server's acknowledgement of it. */
  async subscribe(channel: string) {
    this.send({ action: 'subscribe', channel })
    return this.next(
      (m) => m.type === 'connection' && m.status === 'subscribed' && m.channel === channel,
    )
  }

  async unsubscribe(channel: string) {
    this.send({ action: 'unsubscribe', channel })
    return this.next(
      (m) => m.type === 'connection' && m.status === 'unsubscribed' && m.channel === channel,
    )
  }

  /** Every event received so far (consumed or not). */
  receivedEvents() {
    return this.messages.filter((m) => m.type === 'entity_event' || m.type === 'system_event')
  }

  close() {
    this.socket.close()
    return this.closed
  }
}

/**
 * Proves clients got nothing more: emits a marker test-event that each client's channel receives (events
 * arrive in seq order, so anything sent before the marker is in by then).
 */
export async function settle(
  server: TestServer,
  clients: WsClient | WsClient[],
  channel: string,
  timeout?: number,
) {
  const marker = `marker-${crypto.randomUUID()}`
  const res = await server.api(
    'POST',
    `/api/v1/ws/test-event?channel=${encodeURIComponent(channel)}&message=${marker}`,
  )
  if (res.status !== 200) throw new Error(`marker failed: ${JSON.stringify(res.body)}`)
  for (const client of [clients].flat())
    await client.event((m) => m.type === 'system_event' && m.message === marker, timeout)
}

/** Creates a temperature sensor (fields of `body` on top) and returns its id. */
export async function createSensor(server: TestServer, body: Record<string, unknown> = {}) {
  const res = await server.api('POST', '/api/v1/sensors', {
    tipo: 'temperatura',
    modelo: 'DHT22',
    ...body,
  })
  if (res.status !== 201) throw new Error(`sensor not created: ${JSON.stringify(res.body)}`)
  return res.body.id as number
}

/** The value of one series in /metrics (`labels` such as `reason="slow"`); 0 when absent. */
export async function metric(server: TestServer, name: string, labels?: string) {
  const text = await (await fetch(`${server.base}/metrics`)).text()
  const line = text
    .split('\n')
    .find((l) => l.startsWith(labels ? `${name}{` : `${name} `) && (!labels || l.includes(labels)))
  return line ? Number(line.split(' ').at(-1)) : 0
}

/** Polls a condition that no event announces (a port, a metric, an HTTP answer). */
export async function until(check: () => Promise<boolean>, what: string, timeout = 20_000) {
  const deadline = Date.now() + timeout
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`)
    await Bun.sleep(20)
  }
}

/** A server for a whole file and a client on `general` that has had its greeting. */
export async function startWatchedServer(env: Record<string, string> = {}) {
  const server = await startTestServer(env)
  const general = await server.ws('/api/v1/ws', { channel: 'general' })
  await general.connected()
  return { server, general }
}

/**
 * Two instances sharing a PostgreSQL database of their own and Redis under a fresh prefix (`env` on top);
 * stop() stops both and drops the database.
 */
export async function startPair(names: [string, string], env: Record<string, string> = {}) {
  await requireRedis(TEST_REDIS_URL)
  const db = await createTestDatabase()
  const shared = {
    DATABASE_URL: db.url,
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: `vigia-test-${crypto.randomUUID().slice(0, 8)}`,
    ...env,
  }
  const started: TestServer[] = []
  const stop = async () => {
    for (const server of started) await server.stop()
    await db.drop()
  }
  try {
    for (const name of names) started.push(await startTestServer({ ...shared, INSTANCE_ID: name }))
  } catch (error) {
    await stop()
    throw error
  }
  return { a: started[0]!, b: started[1]!, stop }
}
