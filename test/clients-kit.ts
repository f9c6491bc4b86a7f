// Test kit for the clients: a server that can be stopped and started again on the same port and database
// file, and headless Debian Chromium driven by playwright-core.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { chromium } from 'playwright-core'
import { loadConfig } from '../src/config'
import { createLogger } from '../src/lib/logger'
import { startServer } from '../src/server'
import { api, tempDir } from './helpers'

export const CHROMIUM = '/usr/bin/chromium'

export function launchChromium() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-quic',
      '--no-first-run',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
}

type Running = Awaited<ReturnType<typeof startServer>>

/**
 * A real server whose process-internal instance can be stopped and started again: `restart()` keeps the
 * port and the SQLite file, `startAside()` runs another instance on the same file on a free port (events
 * made there happen while clients of the main port are away), `startFresh()` takes the port with a new
 * database (another event history).
 */
export async function restartableServer(env: Record<string, string> = {}) {
  const dir = tempDir('vigia-clients-')
  let database = join(dir, 'test.db')
  const config = (port: number) =>
    loadConfig({
      DATABASE_URL: `sqlite:${database}`,
      PORT: String(port),
      HOST: '127.0.0.1',
      LOG_LEVEL: 'silent',
      JWT_SECRET: 'test-secret-test-secret-test-secret!',
      ...env,
    })
  const boot = (port: number) => {
    const cfg = config(port)
    return startServer(cfg, createLogger(cfg.logLevel))
  }
  let running: Running | undefined = await boot(0)
  const port = running.port
  const base = running.url
  return {
    port,
    base,
    dir,
    get running() {
      return running
    },
    api: (method: string, path: string, body?: unknown) => api(base, method, path, body),
    async stop() {
      await running?.stop()
      running = undefined
    },
    async start() {
      running = await boot(port)
      return running
    },
    async restart() {
      await this.stop()
      return this.start()
    },
    async startAside() {
      const aside = await boot(0)
      return {
        ...aside,
        api: (method: string, path: string, body?: unknown) => api(aside.url, method, path, body),
      }
    },
    async startFresh() {
      await this.stop()
      database = join(dir, `fresh-${crypto.randomUUID()}.db`)
      return this.start()
    },
    async cleanup() {
      await this.stop()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export type RestartableServer = Awaited<ReturnType<typeof restartableServer>>
