// Starts and stops the servers under test as separate processes: Vigía from its real entry point, and the
// two reference servers. Each gets a fresh port (and Vigía a fresh SQLite file) per start.
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

export interface RunningServer {
  target: Target
  pid: number
  base: string
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

/** `profileDir`: run Vigía under Bun's CPU profiler, writing a .cpuprofile and a markdown summary there. */
export async function startServer(
  target: Target,
  files: number,
  profileDir?: string,
): Promise<RunningServer> {
  const dir = mkdtempSync(join(tmpdir(), `vigia-bench-${target}-`))
  const port = freePort()
  const base = `http://127.0.0.1:${port}`
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    HOME: process.env.HOME ?? dir,
    PORT: String(port),
    NODE_ENV: 'production',
  }
  let cmd: string[]
  if (target === 'vigia') {
    cmd = profileDir
      ? ['bun', '--cpu-prof', '--cpu-prof-md', `--cpu-prof-dir=${profileDir}`, 'src/index.ts']
      : ['bun', 'src/index.ts']
    Object.assign(env, {
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${join(dir, 'bench.db')}`,
      WEBSOCKET_MAX_CONNECTIONS: '100000',
      LOG_LEVEL: 'warn',
      JWT_SECRET: 'benchmark-secret-benchmark-secret-0123',
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
  const deadline = Date.now() + 30_000
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${target} exited at start:\n${tail()}`)
    if (Date.now() > deadline) {
      proc.kill('SIGKILL')
      throw new Error(`${target} did not answer /health within 30 s:\n${tail()}`)
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
