// Runs once per `bun test` process (bunfig.toml [test] preload), before any test file: makes sure what the
// suite talks to is there, so the README's test command passes by itself on a fresh machine. Starts the
// local PostgreSQL, Redis and Mosquitto if they stopped, and installs Debian's chromium (browser tests) and
// prometheus (promtool) when missing. Idempotent; when everything is there it only probes three ports.
import { existsSync, readdirSync } from 'node:fs'
import { connect } from 'node:net'

const log = (line: string) => process.stderr.write(`[test setup] ${line}\n`)

/** Does something accept TCP connections on 127.0.0.1:port? */
const listening = (port: number, timeoutMs = 500) =>
  new Promise<boolean>((resolve) => {
    const socket = connect(port, '127.0.0.1')
    const done = (up: boolean) => {
      socket.destroy()
      resolve(up)
    }
    socket.setTimeout(timeoutMs, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })

function run(cmd: string[], env: Record<string, string> = {}) {
  const result = Bun.spawnSync(cmd, {
    env: { ...process.env, ...env },
    stdout: 'ignore',
    stderr: 'pipe',
  })
  if (!result.success)
    log(`${cmd.join(' ')} failed: ${result.stderr.toString().trim().slice(-500)}`)
  return result.success
}

const which = (name: string) => Bun.which(name) !== null

async function waitFor(port: number, name: string) {
  for (let i = 0; i < 40; i++) {
    if (await listening(port)) return
    await Bun.sleep(250)
  }
  log(`${name} is still not listening on 127.0.0.1:${port}; the tests that need it will fail`)
}

const SERVICES = [
  {
    name: 'PostgreSQL',
    port: 5432,
    start: () => {
      if (!which('pg_ctlcluster') || !existsSync('/etc/postgresql')) return false
      const [version] = readdirSync('/etc/postgresql')
      return (
        !!version && run(['pg_ctlcluster', '--skip-systemctl-redirect', version, 'main', 'start'])
      )
    },
  },
  {
    name: 'Redis',
    port: 6379,
    start: () =>
      which('redis-server') &&
      run([
        'redis-server',
        '--daemonize',
        'yes',
        '--bind',
        '127.0.0.1',
        '--port',
        '6379',
        '--save',
        '',
        '--appendonly',
        'no',
      ]),
  },
  {
    name: 'Mosquitto',
    port: 1883,
    start: () =>
      which('mosquitto') && run(['mosquitto', '-d', '-c', '/etc/mosquitto/mosquitto.conf']),
  },
]

/** Debian packages the tests run: the browser of the page tests, and promtool for /metrics. */
const PACKAGES = [
  { name: 'chromium', installed: () => existsSync('/usr/bin/chromium') },
  { name: 'prometheus', installed: () => which('promtool') },
]

async function setUp() {
  await Promise.all(
    SERVICES.map(async (service) => {
      if (await listening(service.port)) return
      log(`starting ${service.name}`)
      if (!service.start()) log(`cannot start ${service.name} here; start it yourself`)
      await waitFor(service.port, service.name)
    }),
  )
  const missing = PACKAGES.filter((p) => !p.installed()).map((p) => p.name)
  if (missing.length === 0) return
  if (!which('apt-get') || process.getuid?.() !== 0) {
    log(
      `missing Debian packages ${missing.join(', ')}; install them (apt-get install ${missing.join(' ')})`,
    )
    return
  }
  log(`installing ${missing.join(', ')} with apt-get (once)`)
  const noninteractive = { DEBIAN_FRONTEND: 'noninteractive' }
  if (run(['apt-get', 'update', '-qq'], noninteractive))
    run(['apt-get', 'install', '-y', '-qq', ...missing], noninteractive)
}

await setUp()
