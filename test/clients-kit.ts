// Test kit for the clients: a server that can be stopped and started again on the same port and database
// file, headless Debian Chromium driven by playwright-core, and waits on the client library's events.
import { rmSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, expect } from 'bun:test'
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core'
import { loadConfig } from '../src/config'
import { createLogger } from '../src/lib/logger'
import type { RealtimeClient, RealtimeEvents, ServerEvent } from '../src/client'
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

export interface PageOptions {
  viewport?: { width: number; height: number }
  /** Installs Playwright's fake clock before the page loads. */
  clock?: boolean
  /** Aborts, and fails the test on, any request that leaves the page's own origin. */
  localOnly?: boolean
}

/**
 * One Chromium for the test file and a fresh context per page. Registers the file's hooks: the browser
 * launched before all tests and closed after them; after each test its pages' contexts closed (before the
 * file's own afterEach stops its server: hooks run in the order registered) and their script errors none.
 */
export function chromiumPages(defaults: PageOptions = {}) {
  let browser: Browser
  let contexts: BrowserContext[] = []
  let errors: string[] = []
  beforeAll(async () => {
    browser = await launchChromium()
  })
  afterAll(() => browser.close())
  afterEach(async () => {
    await Promise.all(contexts.map((c) => c.close()))
    const seen = errors
    contexts = []
    errors = []
    expect(seen).toEqual([])
  })
  return {
    /** A fresh page at `url` whose script errors fail the test. */
    async open(url: string, options: PageOptions = {}): Promise<Page> {
      const { viewport, clock, localOnly } = { ...defaults, ...options }
      const context = await browser.newContext(viewport ? { viewport } : {})
      contexts.push(context)
      const page = await context.newPage()
      page.on('pageerror', (e) => errors.push(e.message))
      if (localOnly) {
        const origin = new URL(url).origin
        await page.route('**/*', (route) =>
          route.request().url().startsWith(origin) ? route.continue() : route.abort(),
        )
        page.on('requestfailed', (r) => {
          if (!r.url().startsWith(origin)) errors.push(`left the server: ${r.url()}`)
        })
      }
      if (clock) await page.clock.install()
      await page.goto(url)
      return page
    },
    /** Closes a page's context now (a page the test is done with). */
    close: (page: Page) => page.context().close(),
  }
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

/** Resolves with the next value of a client event that matches, or fails after `timeout` ms. */
export function when<K extends keyof RealtimeEvents>(
  client: RealtimeClient,
  type: K,
  pred: (value: RealtimeEvents[K]) => boolean = () => true,
  timeout = 10_000,
): Promise<RealtimeEvents[K]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      off()
      reject(new Error(`no matching "${type}" within ${timeout} ms`))
    }, timeout)
    const off = client.on(type, (value) => {
      if (!pred(value)) return
      clearTimeout(timer)
      off()
      resolve(value)
    })
  })
}

/** Every event a client gets, in arrival order. */
export function record(client: RealtimeClient) {
  const events: ServerEvent[] = []
  client.on('event', (e) => events.push(e))
  return events
}
