// The pages in real headless Chromium: the WebSocket test client, the live dashboard, the index and Swagger UI.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { insertOne } from '../src/lib/crud'
import { predictionResource } from '../src/modules/predictions/service'
import { chromiumPages, restartableServer, type RestartableServer } from './clients-kit'
import { startTestServer, type TestServer } from './helpers'

// bunfig's [test] timeout is not read (oven-sh/bun#7789); real servers, brokers and browsers need more than 5 s.
setDefaultTimeout(30_000)

const PAGE_TEST_MS = 60_000

const pages = chromiumPages()
const openPage = (url: string, clock = false) => pages.open(url, { clock })
let restartable: RestartableServer | undefined
let server: TestServer | undefined

afterEach(async () => {
  await restartable?.cleanup()
  await server?.stop()
  restartable = server = undefined
})

/** The test client connected to `channel` (optionally a sub-channel id) as `userId`. */
async function connectClient(page: Page, channel: string, userId?: string) {
  await page.selectOption('#channel', channel)
  if (userId) await page.fill('#user-id', userId)
  await page.click('#connect')
  await page.waitForSelector('#status[data-state="open"]')
}

/** Log lines of one kind: a system event by its text, an entity event by its id. */
const line = (page: Page, kind: string, match: string | number) =>
  typeof match === 'number'
    ? page.locator(`#log .line[data-kind="${kind}"][data-entity-id="${match}"]`)
    : page.locator(`#log .line[data-kind="${kind}"]`, { hasText: match })

/** A test event through REST whose line proves every earlier event of the channel is on the page. */
async function settlePage(page: Page, base: string, channel: string) {
  const marker = `marker-${crypto.randomUUID()}`
  await fetch(`${base}/api/v1/ws/test-event?channel=${channel}&message=${marker}`, {
    method: 'POST',
  })
  await line(page, 'system', marker).waitFor()
}

describe('the WebSocket test client page', () => {
  test(
    'connects, shows an event created through REST, reconnects after the server restarts and shows the events of the gap',
    async () => {
      restartable = await restartableServer()
      const srv = restartable
      const page = await openPage(`${srv.base}/websocket_client.html`, true)
      await connectClient(page, 'sensors', 'navegador-1')

      const sensor = await srv.api('POST', '/api/v1/sensors', {
        tipo: 'temperatura',
        modelo: 'DHT22',
      })
      const created = line(page, 'sensor', sensor.body.id)
      await created.waitFor()
      expect(await created.getAttribute('class')).toContain('ev-created')
      expect(await created.textContent()).toContain('"modelo":"DHT22"')

      await page.click('#stats-refresh')
      await page.locator('#stats tr[data-channel="sensors"]', { hasText: 'navegador-1' }).waitFor()

      await page.fill('#test-message', 'hola desde el navegador')
      await page.click('#send-test')
      await line(page, 'system', 'hola desde el navegador').waitFor()

      await srv.stop()
      await page.waitForSelector('#status[data-state="reconnecting"]')
      // Changes made while the page is away, by another instance on the same database.
      const aside = await srv.startAside()
      const missed = [
        await aside.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'hueco-1' }),
        await aside.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'hueco-2' }),
      ]
      await aside.stop()
      await srv.start()
      // The reconnect timer is pending with its backoff; let it fire now.
      await page.clock.fastForward('01:00')

      await page.locator('#log .line[data-resumed="true"]', { hasText: 'sin pérdidas' }).waitFor()
      await page.waitForSelector('#status[data-state="open"]')
      await settlePage(page, srv.base, 'sensors')
      for (const m of missed) expect(await line(page, 'sensor', m.body.id).count()).toBe(1)
      expect(await created.count()).toBe(1)
      expect(await page.locator('#gap').isHidden()).toBe(true)
      expect(await page.textContent('#reconnects')).toBe('1')
    },
    PAGE_TEST_MS,
  )

  test(
    'after a disconnect it connects to the channel picked now, not the one it had before',
    async () => {
      server = await startTestServer()
      const srv = server
      const page = await openPage(`${srv.base}/websocket_client.html`)
      await connectClient(page, 'general', 'navegador-2')
      await page.click('#disconnect')
      await page.waitForSelector('#status[data-state="closed"]')
      await page.locator('#channels', { hasText: '(se usará general)' }).waitFor()

      await connectClient(page, 'sensors')
      await page.locator('#log .line.ev-connection', { hasText: 'Conectado a sensors' }).waitFor()
      expect(await page.locator('#channels .chip').allTextContents()).toEqual(['sensors×'])
      const sensor = await srv.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'x' })
      await line(page, 'sensor', sensor.body.id).waitFor()
      const stats = await srv.api('GET', '/api/v1/ws/stats')
      expect(stats.body.channels.sensors.connections).toBe(1)
      expect(stats.body.channels.general).toBeUndefined()
    },
    PAGE_TEST_MS,
  )

  test(
    'says so when the gap cannot be recovered (the server came back with another event history)',
    async () => {
      restartable = await restartableServer()
      const page = await openPage(`${restartable.base}/websocket_client.html`, true)
      await connectClient(page, 'general')
      await restartable.startFresh()
      await page.clock.fastForward('01:00')
      await page.locator('#gap', { hasText: 'Hueco no recuperable' }).waitFor()
      expect(await page.locator('#log .line.ev-gap').count()).toBe(1)
      await page.waitForSelector('#status[data-state="open"]')
    },
    PAGE_TEST_MS,
  )

  test(
    'the event log keeps a bounded number of lines, filters them, pauses and colours each event type',
    async () => {
      server = await startTestServer()
      const srv = server
      const sensor = await srv.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: 'x' })
      // Online before the page connects, so the only sensor event it logs is the change below.
      await srv.api('POST', '/api/v1/readings', { sensor_id: sensor.body.id, temperatura: 1 })
      const page = await openPage(`${srv.base}/websocket_client.html`)
      await page.selectOption('#max-lines', '200')
      await page.fill('#sub-id', String(sensor.body.id))
      await connectClient(page, 'sensors')
      expect(await page.locator('#channels .chip').textContent()).toContain(
        `sensors:${sensor.body.id}`,
      )

      const batch = await srv.api(
        'POST',
        '/api/v1/readings/batch',
        Array.from({ length: 250 }, (_, i) => ({ sensor_id: sensor.body.id, temperatura: i / 10 })),
      )
      expect(batch.status).toBe(201)
      const last = batch.body.at(-1).id
      await line(page, 'reading', last).waitFor()
      expect(await page.locator('#log .line').count()).toBe(200)
      expect(await line(page, 'reading', batch.body[0].id).count()).toBe(0)

      await page.fill('#filter', `id=${last} `)
      expect(await page.locator('#log .line:visible').count()).toBe(1)
      await page.fill('#filter', '')

      await page.click('#pause')
      const changed = await srv.api('PATCH', `/api/v1/sensors/${sensor.body.id}`, {
        nombre: 'Sala',
      })
      await page.locator('#log-info', { hasText: '1 en espera' }).waitFor()
      expect(await line(page, 'sensor', changed.body.id).count()).toBe(0)
      await page.click('#pause')
      const updated = line(page, 'sensor', changed.body.id)
      await updated.waitFor()
      expect(await updated.getAttribute('class')).toContain('ev-updated')

      const colour = (l: ReturnType<typeof line>) =>
        l.evaluate((node) => getComputedStyle(node).borderLeftColor)
      expect(await colour(line(page, 'reading', last))).toBe('rgb(34, 197, 94)')
      expect(await colour(updated)).toBe('rgb(59, 130, 246)')
    },
    PAGE_TEST_MS,
  )
})

describe('the live dashboard', () => {
  test(
    'lists sensors by location, draws a reading as it arrives with the forecast band ahead, and shows an anomaly the moment it is detected until it is resolved',
    async () => {
      server = await startTestServer()
      const srv = server
      const place = await srv.api('POST', '/api/v1/locations', {
        nombre: 'Invernadero norte',
        latitud: 40.4,
        longitud: -3.7,
      })
      const sensor = await srv.api('POST', '/api/v1/sensors', {
        tipo: 'temperatura',
        modelo: 'DHT22',
        nombre: 'Sala',
        location_id: place.body.id,
      })
      const page = await openPage(`${srv.base}/dashboard.html`)
      await page.waitForSelector('#status[data-state="open"]')
      const row = page.locator(
        `.location[data-location-id="${place.body.id}"] .sensor[data-sensor-id="${sensor.body.id}"]`,
      )
      await row.waitFor()
      await row.locator('input').check()
      const card = page.locator(`.chart-card[data-sensor-id="${sensor.body.id}"]`)
      await card.locator('canvas').first().waitFor()
      await page.waitForSelector(`.chart-card[data-points="0"]`)

      await srv.api('POST', '/api/v1/readings', {
        sensor_id: sensor.body.id,
        temperatura: 21.5,
        humedad: 40,
        timestamp: new Date().toISOString(),
      })
      await page.waitForSelector(`.chart-card[data-points="1"][data-latest="21.5"]`)
      expect(await card.locator('.latest').textContent()).toContain('21.5 °C')

      // Stands in for the forecaster (issue 5): a completed prediction, announced as prediction_completed.
      const now = Date.now()
      await srv.ctx.emitter.transact((tx, emit) =>
        insertOne(
          tx,
          emit,
          predictionResource,
          {
            sensor_id: sensor.body.id,
            variable: 'temperatura',
            horizon_minutes: 30,
            status: 'completed',
            model: 'prueba',
            forecast: [10, 20, 30].map((m) => ({
              timestamp: new Date(now + m * 60_000).toISOString(),
              value: 22,
              lower: 21,
              upper: 23,
            })),
            completed_at: now,
            created_at: now,
            updated_at: now,
          },
          'prediction_completed',
        ),
      )
      await page.waitForSelector(`.chart-card[data-forecast-points="3"]`)
      expect(await card.locator('.forecast').textContent()).toContain('prueba')

      const anomaly = await srv.api('POST', '/api/v1/anomalies', {
        sensor_id: sensor.body.id,
        variable: 'temperatura',
        value: 48.2,
        severity: 'critical',
        message: 'Demasiado calor',
      })
      const item = page.locator(`.anomaly[data-anomaly-id="${anomaly.body.id}"]`)
      await item.waitFor()
      expect(await item.textContent()).toContain('Demasiado calor')
      expect(await item.getAttribute('data-status')).toBe('open')
      await page.waitForSelector(`.chart-card[data-anomaly-marks="1"]`)

      await item.locator('button.ack').click()
      await page.waitForSelector(
        `.anomaly[data-anomaly-id="${anomaly.body.id}"][data-status="acknowledged"]`,
      )
      expect((await srv.api('GET', `/api/v1/anomalies/${anomaly.body.id}`)).body.status).toBe(
        'acknowledged',
      )
      await page.locator(`.anomaly[data-anomaly-id="${anomaly.body.id}"] button.resolve`).click()
      await item.waitFor({ state: 'detached' })
      expect((await srv.api('GET', `/api/v1/anomalies/${anomaly.body.id}`)).body.status).toBe(
        'resolved',
      )
    },
    PAGE_TEST_MS,
  )

  test(
    'under AUTH_MODE=required it asks for a token without one; opened with ?token= it lists, goes live and acknowledges',
    async () => {
      const password = 'pages-admin-password'
      server = await startTestServer({ AUTH_MODE: 'required', ADMIN_PASSWORD: password })
      const srv = server
      const login = await srv.api('POST', '/auth/login', { username: 'admin', password })
      const token = login.body.access_token as string
      const auth = { authorization: `Bearer ${token}` }
      const place = await srv.api('POST', '/api/v1/locations', { nombre: 'Nave 2' }, auth)
      const sensor = await srv.api(
        'POST',
        '/api/v1/sensors',
        { tipo: 'temperatura', modelo: 'DHT22', location_id: place.body.id },
        auth,
      )

      const anonymous = await openPage(`${srv.base}/dashboard.html`)
      await anonymous.locator('#status', { hasText: 'Se necesita un token válido' }).waitFor()
      await pages.close(anonymous)

      const page = await openPage(`${srv.base}/dashboard.html?token=${token}`)
      await page.waitForSelector('#status[data-state="open"]')
      await page.locator(`.sensor[data-sensor-id="${sensor.body.id}"]`).waitFor()
      const anomaly = await srv.api(
        'POST',
        '/api/v1/anomalies',
        { sensor_id: sensor.body.id, variable: 'temperatura', value: 48.2, severity: 'critical' },
        auth,
      )
      const item = page.locator(`.anomaly[data-anomaly-id="${anomaly.body.id}"]`)
      await item.waitFor()
      await item.locator('button.ack').click()
      await page.waitForSelector(
        `.anomaly[data-anomaly-id="${anomaly.body.id}"][data-status="acknowledged"]`,
      )
      expect((await srv.api('GET', `/api/v1/anomalies/${anomaly.body.id}`)).body.status).toBe(
        'acknowledged',
      )
    },
    PAGE_TEST_MS,
  )
})

describe('the browser bundle', () => {
  test(
    'the library is served as an ES module built from src/client, and an unknown asset gets a 404 envelope',
    async () => {
      server = await startTestServer()
      const page = await openPage(`${server.base}/`)
      const loaded = await page.evaluate(async (path) => {
        const lib: typeof import('../src/client') = await import(path)
        const client = new lib.RealtimeClient({ url: location.origin, channels: ['general'] })
        const greeting = await client.connect()
        await client.close()
        return {
          delay: lib.backoffDelay(
            2,
            { initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 },
            () => 0,
          ),
          http: lib.httpBase('ws://example.org/api/v1/ws'),
          status: greeting.status,
        }
      }, '/assets/client/index.js')
      expect(loaded).toEqual({ delay: 400, http: 'http://example.org', status: 'connected' })

      const missing = await server.api('GET', '/assets/nothing-here.js')
      expect(missing.status).toBe(404)
      expect(missing.body).toMatchObject({ error: 'not_found' })
      const js = await fetch(`${server.base}/assets/web/dashboard.js`)
      expect(js.headers.get('content-type')).toContain('javascript')
    },
    PAGE_TEST_MS,
  )
})

describe('the index and the API docs', () => {
  test(
    'the index links the client, the dashboard and Swagger, whose UI renders the operations',
    async () => {
      server = await startTestServer()
      const page = await openPage(`${server.base}/`)
      expect(await page.getAttribute('#link-client', 'href')).toBe('/websocket_client.html')
      expect(await page.getAttribute('#link-dashboard', 'href')).toBe('/dashboard.html')
      await page.click('#link-swagger')
      await page.waitForURL(/\/swagger$/)
      await page.locator('.opblock').first().waitFor()
      expect(await page.locator('.opblock').count()).toBeGreaterThan(20)
      await page
        .locator('.opblock-summary-path', { hasText: /^\/api\/v1\/sensors\/?$/ })
        .first()
        .waitFor()
      await page.locator('.opblock-tag', { hasText: 'anomalies' }).first().waitFor()
    },
    PAGE_TEST_MS,
  )
})
