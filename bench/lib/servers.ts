// Starts and stops the servers under test as separate processes: Vigía from its real entry point, and the
// two reference servers. Each gets a fresh port (and Vigía a fresh SQLite file, unless told to use a given
// file or a PostgreSQL database) per start.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import type { Proto } from './protocol'

export type Target = 'vigia' | 'bun' | 'socketio'

export const TARGETS: Record<Target, { label: string; proto: Proto }> = {
  vigia: { label: 'Vigía', proto: 'ws' },
  bun: { label: 'Bun.serve minimal', proto: 'ws' },
  socketio: { label: 'Socket.IO (Node)', proto: 'sio' },
}

export const ROOT = resolve(import.meta.dir, '../..')

/**
 * The allocator keeps freed pages instead of handing them back after 100 ms, as `bun run start` runs
 * Vigía (docs/operations.md, "Memory"). Every process measured gets it: Vigía, the bare Bun.serve server
 * and the storage references, so they differ only by their code (the load generators keep Bun's default).
 */
export const ALLOCATOR_ENV = { MIMALLOC_PURGE_DELAY: '-1' }

export interface RunningServer {
  target: Target
  pid: number
  base: string
  /** Vigía's DATABASE_URL (`sqlite:<file>` or PostgreSQL's). */
  databaseUrl?: string
  /** The subscriber URL for one channel (and a `since`, for Vigía). */
  wsUrl(channel: string, since?: number): string
  stop(): Promise<void>
}

function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  return port
}

/** Runs `cmd` with the open-file limit raised to `files` (Node does not raise its own). */
export function withFileLimit(cmd: string[], files: number): string[] {
  return ['sh', '-c', `ulimit -n ${files} 2>/dev/null; exec "$@"`, 'sh', ...cmd]
}

export interface ServerOptions {
  /** Run Vigía under Bun's CPU profiler, writing a .cpuprofile and a markdown summary there. */
  profileDir?: string
  /** Vigía's database: a fresh SQLite file by default, or this SQLite file, or a PostgreSQL URL. */
  sqliteFile?: string
  postgresUrl?: string
  /** Several instances: the shared Redis and this deployment's key prefix. */
  redis?: { url: string; prefix: string }
  /** More environment for Vigía (INSTANCE_ID, …). */
  env?: Record<string, string>
  /** How long a start may take before /health answers (a large database may take a while). */
  startTimeoutMs?: number
}

export async function startServer(
  target: Target,
  files: number,
  options: ServerOptions = {},
): Promise<RunningServer> {
  const profileDir = options.profileDir
  const dir = mkdtempSync(join(tmpdir(), `vigia-bench-${target}-`))
  const port = freePort()
  const base = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    PORT: String(port),
    NODE_ENV: 'production',
    ...ALLOCATOR_ENV,
  }
  let cmd: string[]
  if (target === 'vigia') {
    // BENCH_VIGIA_ENTRY: another entry point to measure (a checkout of another branch), for development.
    const entry = process.env.BENCH_VIGIA_ENTRY ?? 'src/index.ts'
    cmd = profileDir
      ? ['bun', '--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${profileDir}`, entry]
      : ['bun', entry]
    Object.assign(env, {
      HOST: '127.0.0.1',
      DATABASE_URL: options.postgresUrl ?? `sqlite:${options.sqliteFile ?? join(dir, 'bench.db')}`,
      WEBSOCKET_MAX_CONNECTIONS: '100000',
      // Every load generator sends from 127.0.0.1, up to 1,024 requests at once.
      HTTP_MAX_REQUESTS_PER_IP: '100000',
      LOG_LEVEL: 'warn',
      JWT_SECRET: 'benchmark-secret-benchmark-secret-0123',
      // Webhooks are admin-only: the harness logs in as this first user (adminHeaders).
      ADMIN_PASSWORD: BENCH_ADMIN_PASSWORD,
      ...(options.redis && { REDIS_URL: options.redis.url, REDIS_PREFIX: options.redis.prefix }),
      ...options.env,
      // `WEBSOCKET_COMPRESSION=true bun run bench` measures Vigía with permessage-deflate on.
      ...(process.env.WEBSOCKET_COMPRESSION
        ? { WEBSOCKET_COMPRESSION: process.env.WEBSOCKET_COMPRESSION }
        : {}),
    })
  } else if (target === 'bun') cmd = ['bun', 'bench/servers/bun-minimal.ts']
  else cmd = ['node', 'bench/servers/socketio.mjs']

  const log = join(dir, 'server.log')
  const proc = Bun.spawn(withFileLimit(cmd, files), {
    cwd: ROOT,
    env,
    stdout: Bun.file(log),
    stderr: Bun.file(log),
  })
  const tail = () => {
    try {
      return readFileSync(log, 'utf8').slice(-2000)
    } catch {
      return ''
    }
  }
  const deadline = Date.now() + (options.startTimeoutMs ?? 30_000)
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${target} exited at start:\n${tail()}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`${target} did not answer /health in time:\n${tail()}`)
    }
    const ok = await fetch(`${base}/health`).then(
      (r) => r.ok,
      () => false,
    )
    if (ok) break
    await Bun.sleep(50)
  }

  const wsBase = base.replace('http', 'ws')
  return {
    target,
    pid: proc.pid,
    base,
    databaseUrl: env.DATABASE_URL,
    wsUrl: (channel, since) =>
      target === 'socketio'
        ? `${wsBase}/socket.io/?EIO=4&transport=websocket&channel=${channel}`
        : `${wsBase}/api/v1/ws?channel=${channel}${since === undefined ? '' : `&since=${since}`}`,
    async stop() {
      proc.kill('SIGTERM')
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000)
      await proc.exited
      clearTimeout(timer)
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export const BENCH_ADMIN_PASSWORD = 'benchmark-admin-password'

/** `Authorization` for Vigía's admin (the first user, created with BENCH_ADMIN_PASSWORD). */
export async function adminHeaders(base: string): Promise<Record<string, string>> {
  const r = await call(base, 'POST', '/auth/login', {
    username: 'admin',
    password: BENCH_ADMIN_PASSWORD,
  })
  if (r.status !== 200) throw new Error(`admin login answered ${r.status}`)
  return { authorization: `Bearer ${r.body.access_token}` }
}

/** A request to a server under test; the answer's status and parsed body (text when not JSON). */
export async function call(
  base: string,
  method: string,
  path: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: any; ms: number }> {
  const start = performance.now()
  const res = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? headers : { 'content-type': 'application/json', ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  const ms = performance.now() - start
  try {
    return { status: res.status, body: JSON.parse(text), ms }
  } catch {
    return { status: res.status, body: text, ms }
  }
}

export async function post(base: string, path: string, body?: unknown): Promise<any> {
  const res = await fetch(`${base}${path}`, {
    method: 'POST',
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await res.text()
  if (!res.ok) throw new Error(`POST ${path} answered ${res.status}: ${text.slice(0, 300)}`)
  return JSON.parse(text)
}
