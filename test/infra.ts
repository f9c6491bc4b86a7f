// Test infrastructure for the scaling tests: a private redis-server and a private PostgreSQL cluster that a
// test may stop and start (the shared ones on 6379 and 5432 are never stopped), and reachability checks
// that fail loudly instead of skipping.
import { chownSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import Redis from 'ioredis'

/** A port that was free a moment ago (the OS picks it). */
export function freePort(): number {
  const probe = Bun.listen({ hostname: '127.0.0.1', port: 0, socket: { data() {} } })
  const port = probe.port
  probe.stop(true)
  return port
}

/** `count` consecutive ports that were free a moment ago. */
export function freePorts(count: number): number {
  for (;;) {
    const base = 20_000 + Math.floor(Math.random() * 40_000)
    const probes = []
    try {
      for (let i = 0; i < count; i++)
        probes.push(Bun.listen({ hostname: '127.0.0.1', port: base + i, socket: { data() {} } }))
      return base
    } catch {
      // taken: try another range
    } finally {
      for (const probe of probes) probe.stop(true)
    }
  }
}

export async function until(what: string, check: () => Promise<boolean>, timeout = 10_000) {
  const deadline = Date.now() + timeout
  for (;;) {
    if (await check().catch(() => false)) return
    if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeout} ms`)
    await Bun.sleep(50)
  }
}

/** Answers PING within a second, or throws an error that says how to fix it. */
export async function requireRedis(url: string) {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: 1000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null,
  })
  client.on('error', () => undefined)
  try {
    await client.connect()
    await client.ping()
  } catch (error) {
    throw new Error(
      `Redis at ${url} is not reachable (${String(error)}); start it (.ci/run does) or set TEST_REDIS_URL.`,
    )
  } finally {
    client.disconnect()
  }
}

/** A redis-server of this test's own on a free port, keeping nothing on disk; stop() and start() again. */
export async function startPrivateRedis() {
  const port = freePort()
  const url = `redis://127.0.0.1:${port}`
  let proc: ReturnType<typeof Bun.spawn> | undefined
  const ping = async () => {
    const proc = Bun.spawn(['redis-cli', '-p', String(port), 'ping'], {
      stdout: 'pipe',
      stderr: 'ignore',
    })
    return (await new Response(proc.stdout).text()).trim() === 'PONG'
  }
  const start = async () => {
    proc = Bun.spawn(
      [
        'redis-server',
        '--port',
        String(port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
      ],
      { stdout: 'ignore', stderr: 'ignore' },
    )
    await until(`redis-server on ${port} answering`, ping)
  }
  const stop = async () => {
    if (!proc) return
    proc.kill('SIGKILL')
    await proc.exited
    proc = undefined
  }
  await start()
  return { url, port, start, stop }
}

/**
 * A PostgreSQL cluster of this test's own (initdb into a temp dir, trust auth, fsync off) on a free port.
 * Runs as the postgres user when the tests run as root, since postgres refuses to run as root.
 */
export async function startPrivatePostgres() {
  const bindir = Bun.spawnSync(['pg_config', '--bindir']).stdout.toString().trim()
  const bin = (name: string) => (bindir ? join(bindir, name) : name)
  const root = process.getuid?.() === 0
  const asPostgres = root ? ['runuser', '-u', 'postgres', '--'] : []
  const dir = mkdtempSync(join(tmpdir(), 'vigia-pg-'))
  if (root) {
    const uid = Number(Bun.spawnSync(['id', '-u', 'postgres']).stdout.toString().trim())
    const gid = Number(Bun.spawnSync(['id', '-g', 'postgres']).stdout.toString().trim())
    chownSync(dir, uid, gid)
  }
  const data = join(dir, 'data')
  const init = Bun.spawnSync([
    ...asPostgres,
    bin('initdb'),
    '-D',
    data,
    '-U',
    'postgres',
    '--auth=trust',
    '-N',
    '-E',
    'UTF8',
  ])
  if (init.exitCode !== 0) throw new Error(`initdb failed: ${init.stderr.toString()}`)
  const port = freePort()
  // Asynchronous, so the servers under test keep running (and see their connections drop) meanwhile.
  const pgCtl = async (...args: string[]) => {
    const proc = Bun.spawn([...asPostgres, bin('pg_ctl'), '-D', data, '-w', ...args], {
      stdout: 'ignore',
      stderr: 'pipe',
    })
    if ((await proc.exited) !== 0)
      throw new Error(`pg_ctl ${args.at(-1)} failed: ${await new Response(proc.stderr).text()}`)
  }
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off`
  const start = async () => pgCtl('-o', options, '-l', join(dir, 'log'), 'start')
  const stop = async () => pgCtl('-m', 'fast', 'stop')
  await start()
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    start,
    stop,
    async destroy() {
      try {
        await stop()
      } catch {}
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

/** A server as its own process (`bun src/index.ts`, port 0): a crash shows as an exit, not a test error. */
export async function spawnServer(env: Record<string, string>) {
  const proc = Bun.spawn(['bun', 'src/index.ts'], {
    cwd: join(import.meta.dir, '..'),
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      PORT: '0',
      HOST: '127.0.0.1',
      // info: the line that gives the address it listens on.
      LOG_LEVEL: 'info',
      JWT_SECRET: 'spawned-test-secret-spawned-test-secret',
      ...env,
    },
    stdout: 'ignore',
    stderr: 'pipe',
  })
  let log = ''
  const reader = proc.stderr.getReader()
  const decoder = new TextDecoder()
  const listening = /listening on (http:\/\/\S+)/
  while (!listening.test(log)) {
    const { value, done } = await reader.read()
    if (done) throw new Error(`server exited before listening:\n${log}`)
    log += decoder.decode(value)
  }
  // Keep draining stderr so the child never blocks on a full pipe.
  const drained = (async () => {
    for (;;) {
      const { value, done } = await reader.read()
      if (done) return
      log = (log + decoder.decode(value)).slice(-200_000)
    }
  })()
  const base = log.match(listening)![1]!
  let exit: number | undefined
  void proc.exited.then((code) => (exit = code))
  return {
    proc,
    base,
    /** The exit code once the process ended, undefined while it runs. */
    get exitCode() {
      return exit
    },
    log: () => log,
    async stop() {
      if (exit === undefined) proc.kill('SIGTERM')
      await proc.exited
      await drained
    },
  }
}

/**
 * A TCP relay to `port` on 127.0.0.1 that can misbehave like a network: `hold()` accepts new connections
 * but relays nothing (a connect that hangs), `refuse()` closes new ones at once, `release()` relays the
 * held ones after all and every new one again, `cut()` drops every connection it has.
 */
export async function startTcpRelay(port: number) {
  interface Link {
    client: import('bun').Socket<Link>
    upstream?: import('bun').Socket<unknown>
    pending: Uint8Array[]
  }
  const links = new Set<Link>()
  let mode: 'relay' | 'hold' | 'refuse' = 'relay'
  const connectUpstream = async (link: Link) => {
    link.upstream = await Bun.connect({
      hostname: '127.0.0.1',
      port,
      socket: {
        data: (_, data) => void link.client.write(data),
        close: () => void link.client.end(),
        error: () => void link.client.end(),
      },
    })
    for (const chunk of link.pending) link.upstream.write(chunk)
    link.pending = []
  }
  const relay = Bun.listen<Link>({
    hostname: '127.0.0.1',
    port: 0,
    socket: {
      open(client) {
        if (mode === 'refuse') return void client.terminate()
        const link: Link = { client, pending: [] }
        client.data = link
        links.add(link)
        if (mode === 'relay') void connectUpstream(link).catch(() => client.end())
      },
      data(client, data) {
        const link = client.data
        if (link.upstream) link.upstream.write(data)
        else link.pending.push(new Uint8Array(data))
      },
      close(client) {
        if (!client.data) return
        links.delete(client.data)
        client.data.upstream?.end()
      },
    },
  })
  return {
    port: relay.port,
    hold: () => void (mode = 'hold'),
    refuse: () => void (mode = 'refuse'),
    release: () => {
      mode = 'relay'
      for (const link of links)
        if (!link.upstream) void connectUpstream(link).catch(() => undefined)
    },
    cut: () => {
      for (const link of [...links]) {
        link.upstream?.terminate()
        link.client.terminate()
      }
    },
    stop: () => relay.stop(true),
  }
}
