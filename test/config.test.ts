// Configuration: the defaults of CONTRACT §1, one clear line for each bad value, and the real entry point.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { ConfigError, loadConfig } from '../src/config'
import { startTestServer, tempDir } from './helpers'

setDefaultTimeout(30_000)

const ROOT = join(import.meta.dir, '..')

describe('loadConfig defaults', () => {
  test('with no variables set, every value is the one CONTRACT §1 gives', () => {
    const config = loadConfig({})
    expect(config.port).toBe(8000)
    expect(config.host).toBe('0.0.0.0')
    expect(config.database).toEqual({
      kind: 'sqlite',
      path: './data/sensors.db',
      url: 'sqlite:./data/sensors.db',
    })
    expect(config.redisUrl).toBeUndefined()
    expect(config.jwt.expiresIn).toBe(3600)
    expect(config.jwt.secretGenerated).toBe(true)
    expect(config.admin).toEqual({ username: 'admin', password: undefined })
    expect(config.authMode).toBe('open')
    expect(config.authReads).toBe('open')
    expect(config.ws.maxConnections).toBe(100)
    expect(config.ws.maxConnectionsPerIp).toBe(0)
    expect(config.ws.pingInterval).toBe(30)
    expect(config.ws.pingTimeout).toBe(10)
    expect(config.corsOrigins).toBe('*')
    expect(config.logLevel).toBe('info')
  })

  test('without JWT_SECRET each start gets its own random secret', () => {
    const a = loadConfig({}).jwt.secret
    const b = loadConfig({}).jwt.secret
    expect(a).not.toBe(b)
    expect(a.length).toBeGreaterThanOrEqual(32)
  })

  test('blank values count as unset', () => {
    expect(loadConfig({ PORT: '  ', AUTH_MODE: '' }).port).toBe(8000)
  })

  test('the config is frozen all the way down', () => {
    const config = loadConfig({})
    expect(Object.isFrozen(config)).toBe(true)
    expect(Object.isFrozen(config.ws)).toBe(true)
    expect(Object.isFrozen(config.database)).toBe(true)
  })
})

describe('loadConfig reads', () => {
  test('every variable of CONTRACT §1', () => {
    const config = loadConfig({
      PORT: '9000',
      HOST: '127.0.0.1',
      DATABASE_URL: 'sqlite::memory:',
      REDIS_URL: 'redis://127.0.0.1:6379',
      JWT_SECRET: 'a-secret-that-is-long-enough-000000',
      JWT_EXPIRES_IN: '60',
      ADMIN_USERNAME: 'root',
      ADMIN_PASSWORD: 'hunter22',
      AUTH_MODE: 'required',
      WEBSOCKET_MAX_CONNECTIONS: '5',
      WEBSOCKET_MAX_CONNECTIONS_PER_IP: '2',
      WEBSOCKET_PING_INTERVAL: '15',
      WEBSOCKET_PING_TIMEOUT: '5',
      CORS_ORIGINS: 'https://app.example.com, http://localhost:3000',
      LOG_LEVEL: 'warn',
    })
    expect(config).toMatchObject({
      port: 9000,
      host: '127.0.0.1',
      database: { kind: 'sqlite', path: ':memory:' },
      redisUrl: 'redis://127.0.0.1:6379',
      jwt: { secret: 'a-secret-that-is-long-enough-000000', secretGenerated: false, expiresIn: 60 },
      admin: { username: 'root', password: 'hunter22' },
      authMode: 'required',
      ws: { maxConnections: 5, maxConnectionsPerIp: 2, pingInterval: 15, pingTimeout: 5 },
      corsOrigins: ['https://app.example.com', 'http://localhost:3000'],
      logLevel: 'warn',
    })
  })

  test('sqlite:// and postgres:// URLs', () => {
    expect(loadConfig({ DATABASE_URL: 'sqlite:///tmp/x.db' }).database).toMatchObject({
      kind: 'sqlite',
      path: '/tmp/x.db',
    })
    expect(loadConfig({ DATABASE_URL: 'postgres://user:pw@127.0.0.1:5432/test' }).database).toEqual(
      { kind: 'postgres', url: 'postgres://user:pw@127.0.0.1:5432/test' },
    )
  })

  test('AUTH_MODE, AUTH_READS and LOG_LEVEL ignore case', () => {
    const config = loadConfig({ AUTH_MODE: 'Required', AUTH_READS: 'Token', LOG_LEVEL: 'DEBUG' })
    expect(config.authMode).toBe('required')
    expect(config.authReads).toBe('token')
    expect(config.logLevel).toBe('debug')
  })

  test('AUTH_READS=token without AUTH_MODE=required stops the start with one line naming both', () => {
    for (const env of [{ AUTH_READS: 'token' }, { AUTH_READS: 'token', AUTH_MODE: 'open' }]) {
      let error: unknown
      try {
        loadConfig(env)
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConfigError)
      expect((error as ConfigError).message).toContain('AUTH_READS')
      expect((error as ConfigError).message).toContain('AUTH_MODE=required')
      expect((error as ConfigError).message).not.toContain('\n')
    }
    expect(loadConfig({ AUTH_READS: 'open' }).authReads).toBe('open')
  })
})

describe('a bad value', () => {
  const cases: [string, string][] = [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['PORT', '-1'],
    ['PORT', '80.5'],
    ['DATABASE_URL', 'mysql://x'],
    ['DATABASE_URL', 'sqlite:'],
    ['DATABASE_URL', './data/sensors.db'],
    ['REDIS_URL', 'http://127.0.0.1:6379'],
    ['JWT_EXPIRES_IN', 'forever'],
    ['AUTH_MODE', 'maybe'],
    ['AUTH_READS', 'viewer'],
    ['WEBSOCKET_MAX_CONNECTIONS', '-5'],
    ['WEBSOCKET_MAX_CONNECTIONS', '0'],
    ['WEBSOCKET_MAX_CONNECTIONS', 'many'],
    ['WEBSOCKET_MAX_CONNECTIONS_PER_IP', '-1'],
    ['WEBSOCKET_PING_INTERVAL', '0'],
    ['WEBSOCKET_PING_TIMEOUT', '1s'],
    ['CORS_ORIGINS', 'not-an-origin'],
    ['CORS_ORIGINS', 'https://ok.example.com,ftp://files.example.com'],
    ['LOG_LEVEL', 'loud'],
  ]
  for (const [name, value] of cases)
    test(`${name}=${value} throws a ConfigError whose one line names ${name}`, () => {
      let error: unknown
      try {
        loadConfig({ [name]: value })
      } catch (e) {
        error = e
      }
      expect(error).toBeInstanceOf(ConfigError)
      const message = (error as ConfigError).message
      expect(message).toContain(name)
      expect(message).not.toContain('\n')
    })

  test('a short JWT_SECRET is refused in production, without printing it', () => {
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short' })).toThrow(ConfigError)
    expect(() => loadConfig({ NODE_ENV: 'production', JWT_SECRET: 'short' })).not.toThrow(/short"/)
  })
})

/** The environment of a child process: only what Bun needs to run, plus `env`. */
const childEnv = (env: Record<string, string>) => ({
  PATH: process.env.PATH ?? '/usr/bin:/bin',
  HOME: process.env.HOME ?? '/tmp',
  ...env,
})

/** Runs `bun src/index.ts` as a real process, from `cwd`, with only `env` (and what Bun needs). */
const spawnEntry = (env: Record<string, string>, cwd = ROOT) =>
  Bun.spawn(['bun', join(ROOT, 'src/index.ts')], {
    cwd,
    env: childEnv(env),
    stdout: 'pipe',
    stderr: 'pipe',
  })

/** Folders for one test's files, removed when the file's tests are done. */
const scratchDirs: string[] = []
afterAll(() => {
  for (const dir of scratchDirs) rmSync(dir, { recursive: true, force: true })
})
const scratch = () => {
  const dir = tempDir()
  scratchDirs.push(dir)
  return dir
}

/** Hands a started entry point's URL and log to `check`, then stops it with SIGTERM: exit code 0. */
async function whileListening(
  proc: ReturnType<typeof spawnEntry>,
  check: (url: string, log: string) => Promise<void>,
) {
  try {
    const { url, log } = await listening(proc.stderr)
    await check(url, log)
    proc.kill('SIGTERM')
    expect(await proc.exited).toBe(0)
  } finally {
    proc.kill()
  }
}

/** Waits for a process that should stop by itself: its exit code and its non-blank output lines. */
async function finished(proc: ReturnType<typeof spawnEntry>) {
  const [code, out, err] = await Promise.all([
    proc.exited,
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
  ])
  return { code, lines: `${out}${err}`.split('\n').filter((line) => line.trim() !== '') }
}

describe('the entry point bun src/index.ts', () => {
  test('with PORT=abc exits non-zero, printing one line that names PORT', async () => {
    const { code, lines } = await finished(spawnEntry({ PORT: 'abc' }))
    expect(code).not.toBe(0)
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain('PORT')
    expect(lines[0]).toContain('abc')
  }, 30_000)

  test('with DATABASE_URL=mysql://x exits non-zero, printing one line that names DATABASE_URL', async () => {
    const { code, lines } = await finished(spawnEntry({ DATABASE_URL: 'mysql://x' }))
    expect(code).not.toBe(0)
    expect(lines).toEqual([expect.stringContaining('DATABASE_URL')])
  }, 30_000)

  test('with the defaults and a DATABASE_URL in a new folder, creates the folder, answers /health, warns about the random JWT_SECRET and stops on SIGTERM', async () => {
    const dbPath = join(scratch(), 'nested', 'deeper', 'sensors.db')
    // PORT=0 instead of the default 8000, which another process on this machine may hold.
    await whileListening(
      spawnEntry({ DATABASE_URL: `sqlite:${dbPath}`, PORT: '0' }),
      async (url, log) => {
        const health = await fetch(`${url}/health`)
        expect(health.status).toBe(200)
        expect(await health.json()).toMatchObject({
          status: 'ok',
          database: { status: 'ok', dialect: 'sqlite' },
          websocket: { connections: 0, max_connections: 100 },
        })
        expect(existsSync(dbPath)).toBe(true)
        expect(log).toMatch(/WARN JWT_SECRET is not set: using a random secret/)
      },
    )
  }, 30_000)

  test('reads a .env file in its working folder; the environment wins over it', async () => {
    const dir = scratch()
    const dbPath = join(dir, 'from-dotenv.db')
    writeFileSync(
      join(dir, '.env'),
      `PORT=0\nDATABASE_URL=sqlite:${dbPath}\nWEBSOCKET_MAX_CONNECTIONS=7\nLOG_LEVEL=silent\n`,
    )
    // LOG_LEVEL=silent in the file would hide the line `listening` waits for.
    await whileListening(spawnEntry({ LOG_LEVEL: 'info' }, dir), async (url) => {
      const health = await (await fetch(`${url}/health`)).json()
      expect(health.websocket.max_connections).toBe(7)
      expect(existsSync(dbPath)).toBe(true)
    })
  }, 30_000)

  test('on a port another server holds exits non-zero naming the port, and the other server keeps it', async () => {
    const holder = await startTestServer()
    try {
      const { code, lines } = await finished(
        spawnEntry({
          PORT: String(holder.port),
          HOST: '127.0.0.1',
          DATABASE_URL: `sqlite:${join(scratch(), 'second.db')}`,
        }),
      )
      expect(code).not.toBe(0)
      expect(lines.at(-1)).toContain(`port ${holder.port}`)
      expect((await fetch(`${holder.base}/health`)).status).toBe(200)
    } finally {
      await holder.stop()
    }
  }, 30_000)
})

describe('DATABASE_URL=sqlite::memory:', () => {
  test('serves REST and replays the events of its one in-memory database', async () => {
    const server = await startTestServer({ DATABASE_URL: 'sqlite::memory:' })
    try {
      const created = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' })
      expect(created.status).toBe(201)
      expect((await server.api('GET', `/api/v1/sensors/${created.body.id}`)).body).toEqual(
        created.body,
      )
      const client = await server.ws('/api/v1/ws', { channel: 'sensors', since: 0 })
      expect(await client.connected()).toMatchObject({ recovered: true })
      expect(await client.event()).toMatchObject({ entity_id: created.body.id, data: created.body })
      await client.close()
    } finally {
      await server.stop()
    }
  })
})

/** Reads the child's log (to its end, so the pipe stays open); resolves with the listening URL and the log so far. */
function listening(stream: ReadableStream<Uint8Array>) {
  return new Promise<{ url: string; log: string }>((resolve, reject) => {
    const decoder = new TextDecoder()
    let log = ''
    const reader = stream.getReader()
    ;(async () => {
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        log += decoder.decode(chunk.value, { stream: true })
        const found = /listening on (http:\/\/\S+)/.exec(log)
        if (found) resolve({ url: found[1]!, log })
      }
      reject(new Error(`the server exited before listening:\n${log}`))
    })()
  })
}
