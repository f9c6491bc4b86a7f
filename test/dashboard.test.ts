// The dashboard in real headless Chromium: any variable with the fleet page's deep link, the range picker over
// `aggregate` (bucket fitted to the chart's width, min–max band and average, live points still appended), a
// 24-hour time axis without overlapping labels, Spanish anomaly texts and the access panel under AUTH_MODE=required.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { chromiumPages } from './clients-kit'
import { startTestServer, type TestServer } from './helpers'

setDefaultTimeout(30_000)
const PAGE_TEST_MS = 90_000
const HOUR = 3_600_000
/** Readings in weekOfReadings. */
const WEEK = 7 * 24 * 6

const pages = chromiumPages({ viewport: { width: 1280, height: 900 } })
const openPage = (url: string) => pages.open(url)
let server: TestServer | undefined

afterEach(async () => {
  await server?.stop()
  server = undefined
})

/** A temperature sensor with a reading every 10 minutes (at :05, :15, …) over the last 7 days, varying. */
async function weekOfReadings(srv: TestServer) {
  const sensor = await srv.api('POST', '/api/v1/sensors', { tipo: 'temperatura', modelo: 'DHT22' })
  const lastHour = Math.floor(Date.now() / HOUR) * HOUR
  const times = Array.from(
    { length: WEEK },
    (_, i) => lastHour - 7 * 24 * HOUR + i * 600_000 + 300_000,
  )
  const batch = await srv.api(
    'POST',
    '/api/v1/readings/batch',
    times.map((t, i) => ({
      sensor_id: sensor.body.id,
      temperatura: Math.round((20 + 5 * Math.sin(i / 4) + (i % 7) / 10) * 100) / 100,
      timestamp: new Date(t).toISOString(),
    })),
  )
  expect(batch.status).toBe(201)
  return { id: sensor.body.id as number, times }
}

const card = (page: Page, id: number) => page.locator(`.chart-card[data-sensor-id="${id}"]`)
const data = (page: Page, id: number, key: string) => card(page, id).getAttribute(`data-${key}`)

/** Pixels of the chart's canvas (transparent where nothing is drawn) close to a colour and opacity. */
async function pixelsNear(page: Page, id: number, rgba: [number, number, number, number]) {
  return card(page, id)
    .locator('canvas')
    .first()
    .evaluate((canvas: HTMLCanvasElement, [r, g, b, a]) => {
      const { data } = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height)
      let n = 0
      for (let i = 0; i < data.length; i += 4)
        if (
          Math.abs(data[i]! - r!) < 12 &&
          Math.abs(data[i + 1]! - g!) < 12 &&
          Math.abs(data[i + 2]! - b!) < 12 &&
          Math.abs(data[i + 3]! - a!) < 12
        )
          n++
      return n
    }, rgba)
}

describe('the dashboard on any variable', () => {
  test(
    "opens the fleet page's deep link on that sensor and variable, lists only the sensor's own variables with their units, and says what a detected anomaly is in Spanish",
    async () => {
      server = await startTestServer()
      const srv = server
      await srv.api('PUT', '/api/v1/variables/co2', { unit: 'ppm', description: 'CO₂' })
      const air = await srv.api('POST', '/api/v1/sensors', {
        tipo: 'aire',
        modelo: 'SCD30',
        thresholds: { co2: { max: 1000 } },
      })
      const other = await srv.api('POST', '/api/v1/sensors', { tipo: 'humedad', modelo: 'x' })
      await srv.api('POST', '/api/v1/readings', { sensor_id: other.body.id, humedad: 50 })
      const now = Date.now()
      await srv.api(
        'POST',
        '/api/v1/readings/batch',
        Array.from({ length: 10 }, (_, i) => ({
          sensor_id: air.body.id,
          values: { co2: 400 + i, presion: 1010 + i / 10 },
          timestamp: new Date(now - (30 - i) * 60_000).toISOString(),
        })),
      )

      const page = await openPage(
        `${srv.base}/dashboard.html?sensor=${air.body.id}&variable=presion`,
      )
      const chart = card(page, air.body.id)
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${air.body.id}"][data-variable="presion"][data-points="10"]`,
      )
      expect(await chart.locator('select.variable option').allTextContents()).toEqual([
        'co2 (ppm)',
        'presion',
      ])
      expect(await page.locator(`.sensor[data-sensor-id="${air.body.id}"] input`).isChecked()).toBe(
        true,
      )
      expect(
        await page.locator(`.sensor[data-sensor-id="${other.body.id}"] .variables`).textContent(),
      ).toBe('humedad')

      await chart.locator('select.variable').selectOption('co2')
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${air.body.id}"][data-variable="co2"][data-points="10"][data-latest="409"]`,
      )
      expect(await chart.locator('.latest').textContent()).toContain('409 ppm')

      // A live reading past the threshold: appended to the chart, and the anomaly it raises in Spanish.
      await srv.api('POST', '/api/v1/readings', {
        sensor_id: air.body.id,
        values: { co2: 1500 },
        timestamp: new Date().toISOString(),
      })
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${air.body.id}"][data-live-points="1"][data-points="11"][data-latest="1500"]`,
      )
      const item = page.locator('.anomaly').first()
      await item.waitFor()
      const text = await item.textContent()
      expect(text).toContain('co2 = 1500: por encima del máximo 1000')
      expect(text).toMatch(/aviso|leve|grave|crítica/)
      expect(text).not.toMatch(/above|below|maximum|minimum|warning|minor|major|critical/i)
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${air.body.id}"][data-anomaly-marks="1"]`,
      )
    },
    PAGE_TEST_MS,
  )
})

describe('the range picker', () => {
  test(
    'choosing 7 d asks aggregate for a bucket that fits the chart width, draws the min–max band and the average, and live points are still appended; 30 d and a custom range ask again',
    async () => {
      server = await startTestServer()
      const srv = server
      const { id, times } = await weekOfReadings(srv)
      const page = await openPage(`${srv.base}/dashboard.html?sensor=${id}`)
      const asked: URL[] = []
      page.on('request', (r) => {
        if (r.url().includes('/api/v1/readings/aggregate')) asked.push(new URL(r.url()))
      })
      await page.waitForSelector(`.chart-card[data-sensor-id="${id}"][data-bucket]`)
      const width = await card(page, id)
        .locator('.chart')
        .evaluate((e) => e.clientWidth)

      await page.selectOption('#range', '7d')
      await page.waitForSelector(`.chart-card[data-sensor-id="${id}"][data-points="${WEEK}"]`)
      const request = asked.at(-1)!
      expect(request.searchParams.get('variable')).toBe('temperatura')
      expect(request.searchParams.get('fn')).toBe('avg,min,max,count')
      const bucket = Number(await data(page, id, 'bucket-seconds'))
      expect(request.searchParams.get('bucket')).toBe(await data(page, id, 'bucket'))
      const span = Date.parse(request.searchParams.get('to')!) / 1000 - 7 * 86_400
      expect(Date.parse(request.searchParams.get('from')!) / 1000).toBe(
        Math.floor(span / bucket) * bucket,
      )
      // At most one bucket per 3 px, and not needlessly coarse (the next finer size would not fit).
      const buckets = (7 * 86_400) / bucket
      expect(buckets).toBeLessThanOrEqual(width / 3)
      expect(buckets).toBeGreaterThan(width / 3 / 4)

      const rows = (await srv.api('GET', `${request.pathname}${request.search}`)).body
      expect(rows.length).toBeGreaterThan(20)
      expect(Number(await data(page, id, 'bands'))).toBe(rows.length)
      for (const row of rows) {
        expect(row.min).toBeLessThanOrEqual(row.avg)
        expect(row.avg).toBeLessThanOrEqual(row.max)
      }
      // The band's fill, rgba(37, 99, 235, 0.15), and the average's solid stroke.
      expect(await pixelsNear(page, id, [37, 99, 235, 38])).toBeGreaterThan(500)
      expect(await pixelsNear(page, id, [37, 99, 235, 255])).toBeGreaterThan(200)

      await srv.api('POST', '/api/v1/readings', { sensor_id: id, temperatura: 31.5 })
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${id}"][data-points="${WEEK + 1}"][data-live-points="1"][data-latest="31.5"]`,
      )

      const weekBucket = await data(page, id, 'bucket')
      await page.selectOption('#range', '30d')
      await page.waitForSelector(
        `.chart-card[data-sensor-id="${id}"][data-points="${WEEK + 1}"]:not([data-bucket="${weekBucket}"])`,
      )
      expect(asked.at(-1)!.searchParams.get('bucket')).toBe(await data(page, id, 'bucket'))

      // Custom: two whole days ending a day ago, typed as the browser's local time.
      const to = Math.floor(Date.now() / HOUR) * HOUR - 24 * HOUR
      const from = to - 48 * HOUR
      const local = (ms: number) =>
        page.evaluate((t) => {
          const d = new Date(t - new Date(t).getTimezoneOffset() * 60_000)
          return d.toISOString().slice(0, 16)
        }, ms)
      await page.selectOption('#range', 'custom')
      await page.fill('#range-from', await local(from))
      await page.fill('#range-to', await local(to))
      await page.click('#range-apply')
      const inside = times.filter((t) => t >= from && t < to).length
      expect(inside).toBe(48 * 6)
      await page.waitForSelector(`.chart-card[data-sensor-id="${id}"][data-points="${inside}"]`)
      expect(Date.parse(asked.at(-1)!.searchParams.get('to')!)).toBe(to)
    },
    PAGE_TEST_MS,
  )

  test(
    'the time axis reads in 24-hour time and its labels never overlap, at every range',
    async () => {
      server = await startTestServer()
      const { id } = await weekOfReadings(server)
      const page = await openPage(`${server.base}/dashboard.html?sensor=${id}`)
      const time = /^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?(\n\d{2}\/\d{2})?$|^\d{2}\/\d{2}$/
      const hours = new Set<number>()
      const SPAN = { '1h': 3600, '24h': 86_400, '7d': 604_800, '30d': 2_592_000 }
      for (const [range, span] of Object.entries(SPAN)) {
        await page.selectOption('#range', range)
        // Loaded for this range (not still showing the one before it).
        await page.waitForSelector(
          `.chart-card[data-sensor-id="${id}"][data-span="${span}"]:not([data-loading])`,
        )
        await page.waitForFunction(
          ([sel, bucket]) => {
            const el = document.querySelector<HTMLElement>(sel!)
            return el?.dataset.xLabels && el.dataset.labelsFor === bucket
          },
          [`.chart-card[data-sensor-id="${id}"]`, await data(page, id, 'bucket-seconds')],
        )
        const labels: { x: number; w: number; text: string }[] = JSON.parse(
          (await data(page, id, 'x-labels'))!,
        )
        expect(labels.length).toBeGreaterThanOrEqual(3)
        for (const l of labels) {
          expect(l.text).toMatch(time)
          if (/^\d{2}:/.test(l.text)) hours.add(Number(l.text.slice(0, 2)))
        }
        for (const [a, b] of labels.slice(1).map((b, i) => [labels[i]!, b] as const))
          expect(a.x + a.w / 2 + 4).toBeLessThan(b.x - b.w / 2)
      }
      // The 24 h range crosses the afternoon: a 12-hour axis would have shown no hour past 12.
      expect([...hours].some((h) => h > 12)).toBe(true)
    },
    PAGE_TEST_MS,
  )
})

describe('the dashboard under AUTH_MODE=required', () => {
  test(
    'without a token it shows the access panel instead of "Cargando…", refuses a bad token and a wrong password clearly, and after logging in goes live and acknowledges',
    async () => {
      const password = 'dashboard-admin-password'
      server = await startTestServer({ AUTH_MODE: 'required', ADMIN_PASSWORD: password })
      const srv = server
      const login = await srv.api('POST', '/auth/login', { username: 'admin', password })
      const auth = { authorization: `Bearer ${login.body.access_token}` }
      const sensor = await srv.api(
        'POST',
        '/api/v1/sensors',
        { tipo: 'temperatura', modelo: 'DHT22' },
        auth,
      )

      const page = await openPage(`${srv.base}/dashboard.html`)
      await page.locator('#login').waitFor()
      expect(await page.textContent('#status')).toContain('Se necesita un token válido')
      expect(await page.textContent('body')).not.toContain('Cargando')

      await page.fill('#login-token', 'not-a-token')
      await page.click('#token-form button')
      await page.locator('#login-reason', { hasText: 'El token no es válido' }).waitFor()

      await page.fill('#login-user', 'admin')
      await page.fill('#login-password', 'wrong-password')
      await page.click('#login-form button')
      await page.locator('#login-error', { hasText: 'Usuario o contraseña incorrectos.' }).waitFor()
      expect(await page.locator('#login').isVisible()).toBe(true)

      await page.fill('#login-password', password)
      await page.click('#login-form button')
      await page.waitForSelector('#status[data-state="open"]')
      expect(await page.locator('#login').isHidden()).toBe(true)
      await page.locator(`.sensor[data-sensor-id="${sensor.body.id}"]`).waitFor()

      const anomaly = await srv.api(
        'POST',
        '/api/v1/anomalies',
        { sensor_id: sensor.body.id, variable: 'temperatura', value: 48.2, severity: 'critical' },
        auth,
      )
      const item = page.locator(`.anomaly[data-anomaly-id="${anomaly.body.id}"]`)
      await item.waitFor()
      expect(await item.locator('.title').textContent()).toBe('crítica · manual')
      await item.locator('button.ack').click()
      await page.waitForSelector(
        `.anomaly[data-anomaly-id="${anomaly.body.id}"][data-status="acknowledged"]`,
      )

      // A reload in the same tab keeps the session's token.
      await page.reload()
      await page.waitForSelector('#status[data-state="open"]')
      expect(await page.locator('#login').isHidden()).toBe(true)
    },
    PAGE_TEST_MS,
  )
})
