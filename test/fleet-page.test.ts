// The fleet page in real headless Chromium: sensors by location with status, last seen and latest values
// with units, live (a sensor turns offline, then online, while the page is open), the map of located
// places with no tiles, the click through to the dashboard, and device keys issued and shown once.
import { afterEach, describe, expect, setDefaultTimeout, test } from 'bun:test'
import type { Page } from 'playwright-core'
import { ADMIN, bearer, startAuthServer, userToken } from './auth-kit'
import { chromiumPages } from './clients-kit'
import { startTestServer, type TestServer } from './helpers'

setDefaultTimeout(60_000)

const pages = chromiumPages({ localOnly: true })
const openPage = (url: string) => pages.open(url)
let server: TestServer | undefined

afterEach(async () => {
  await server?.stop()
  server = undefined
})

const row = (page: Page, id: number) => page.locator(`#fleet tr[data-sensor-id="${id}"]`)
const chip = (page: Page, id: number, variable: string) =>
  row(page, id).locator(`a.value[data-variable="${variable}"]`)

async function created(srv: TestServer, path: string, body: unknown, headers = {}) {
  const res = await srv.api('POST', path, body, headers)
  if (res.status !== 201) throw new Error(`${path}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body
}

describe('the fleet page', () => {
  test('shows every sensor under its location with status, last seen and latest values with units; the map draws the located places without tiles; a silent sensor turns offline, then online with its next reading, while the page is open', async () => {
    server = await startTestServer({ SENSOR_OFFLINE_AFTER: '3600' })
    const srv = server
    const north = await created(srv, '/api/v1/locations', {
      nombre: 'Invernadero norte',
      latitud: 40.4168,
      longitud: -3.7038,
    })
    const south = await created(srv, '/api/v1/locations', {
      nombre: 'Almacén sur',
      latitud: 37.3891,
      longitud: -5.9845,
    })
    const shed = await created(srv, '/api/v1/locations', { nombre: 'Caseta sin coordenadas' })
    expect((await srv.api('PUT', '/api/v1/variables/co2', { unit: 'ppm' })).status).toBeLessThan(
      300,
    )
    const quick = await created(srv, '/api/v1/sensors', {
      tipo: 'aire',
      modelo: 'SCD30',
      nombre: 'Aula 1',
      location_id: north.id,
      offline_after: 2,
    })
    const steady = await created(srv, '/api/v1/sensors', {
      tipo: 'temperatura',
      modelo: 'DHT22',
      location_id: south.id,
    })
    const shedSensor = await created(srv, '/api/v1/sensors', {
      tipo: 'humedad',
      modelo: 'SHT31',
      location_id: shed.id,
    })
    const loose = await created(srv, '/api/v1/sensors', { tipo: 'presion', modelo: 'BMP280' })
    await created(srv, '/api/v1/readings', { sensor_id: steady.id, temperatura: 21.5, humedad: 40 })
    await created(srv, '/api/v1/readings', { sensor_id: quick.id, values: { co2: 415 } })

    const page = await openPage(`${srv.base}/fleet.html`)
    await page.waitForSelector('#status[data-state="open"]')
    // Grouped by location: each group holds its own sensors; a sensor with no location comes last.
    await page
      .locator(`tbody[data-location-id="${north.id}"] tr[data-sensor-id="${quick.id}"]`)
      .waitFor()
    await page
      .locator(`tbody[data-location-id="${south.id}"] tr[data-sensor-id="${steady.id}"]`)
      .waitFor()
    await page
      .locator(`tbody[data-location-id="${shed.id}"] tr[data-sensor-id="${shedSensor.id}"]`)
      .waitFor()
    await page.locator(`tbody[data-location-id="none"] tr[data-sensor-id="${loose.id}"]`).waitFor()
    expect(
      await page
        .locator('tbody.group')
        .evaluateAll((b) => b.map((x) => x.getAttribute('data-location-id'))),
    ).toEqual([String(south.id), String(shed.id), String(north.id), 'none'])
    // Latest values with their units (temperatura and humedad come described; co2 was given ppm).
    await expect(chip(page, quick.id, 'co2').textContent()).resolves.toBe('co2 415 ppm')
    await expect(chip(page, steady.id, 'temperatura').textContent()).resolves.toBe(
      'temperatura 21.5 °C',
    )
    await expect(chip(page, steady.id, 'humedad').textContent()).resolves.toBe('humedad 40 %')
    expect(await row(page, loose.id).getAttribute('data-status')).toBe('unknown')
    expect(await row(page, loose.id).locator('td.seen').textContent()).toBe('—')
    expect(await row(page, steady.id).getAttribute('data-status')).toBe('online')
    const seen = (await srv.api('GET', `/api/v1/sensors/${steady.id}`)).body.last_seen
    expect(await row(page, steady.id).locator('td.seen').getAttribute('title')).toBe(seen)

    // The map: the two places with coordinates, named, no tile requested (every outside request fails the test).
    await page.waitForSelector('#map[data-points="2"]')
    await expect(page.locator('#map .map-label').allTextContents()).resolves.toEqual(
      expect.arrayContaining(['Invernadero norte', 'Almacén sur']),
    )
    expect(await page.locator('#map img.leaflet-tile').count()).toBe(0)

    // Live: a reading shows at once; the quick sensor, silent for 2 s, goes offline on the page and on
    // the map, and its next reading brings it back.
    await created(srv, '/api/v1/readings', { sensor_id: steady.id, temperatura: 22.75 })
    await chip(page, steady.id, 'temperatura').filter({ hasText: '22.75' }).waitFor()
    await page.waitForSelector(`#fleet tr[data-sensor-id="${quick.id}"][data-status="offline"]`, {
      timeout: 15_000,
    })
    expect(await row(page, quick.id).locator('td.status').textContent()).toBe('sin conexión')
    await page.waitForSelector(`#map path[data-location-id="${north.id}"][data-status="offline"]`)
    await created(srv, '/api/v1/readings', { sensor_id: quick.id, values: { co2: 980, o3: 12 } })
    await page.waitForSelector(`#fleet tr[data-sensor-id="${quick.id}"][data-status="online"]`)
    await chip(page, quick.id, 'co2').filter({ hasText: '980' }).waitFor()
    // A variable first seen live gets its own value, and its unit once described.
    await expect(chip(page, quick.id, 'o3').textContent()).resolves.toBe('o3 12')
    await page.waitForSelector(`#map path[data-location-id="${north.id}"][data-status="online"]`)
    expect(await page.getAttribute('#summary', 'data-online')).toBe('2')
  })

  test('the index links the fleet page; a sensor’s value opens its chart on the dashboard with that variable', async () => {
    server = await startTestServer()
    const sensor = await created(server, '/api/v1/sensors', { tipo: 'aire', modelo: 'SCD30' })
    await created(server, '/api/v1/readings', {
      sensor_id: sensor.id,
      values: { co2: 500, pm25: 8 },
    })
    const page = await openPage(`${server.base}/`)
    await page.click('#link-fleet')
    await page.waitForURL('**/fleet.html')
    await chip(page, sensor.id, 'pm25').waitFor()
    await chip(page, sensor.id, 'pm25').click()
    await page.waitForURL(`**/dashboard.html?sensor=${sensor.id}&variable=pm25`)
    await page.goBack()
    await row(page, sensor.id).locator('a.sensor-link').click()
    await page.waitForURL(`**/dashboard.html?sensor=${sensor.id}&variable=co2`)
  })
})

describe('device keys on the fleet page', () => {
  test('under AUTH_MODE=required the page asks to log in; an admin issues a key, shown once, that stores the sensor’s readings, and revokes it', async () => {
    server = await startAuthServer({ AUTH_MODE: 'required' })
    const srv = server
    const admin = (await srv.api('POST', '/auth/login', ADMIN)).body.access_token as string
    const sensor = await created(
      srv,
      '/api/v1/sensors',
      { tipo: 'aire', modelo: 'SCD30' },
      bearer(admin),
    )

    const page = await openPage(`${srv.base}/fleet.html`)
    // The socket is refused without a token: the login dialog opens; a wrong password says so.
    await page.waitForSelector('#login[open]')
    await page.fill('#username', ADMIN.username)
    await page.fill('#password', 'not-the-password')
    await page.click('#login-submit')
    await page.locator('#login-error').filter({ hasText: /.+/ }).waitFor()
    await page.fill('#password', ADMIN.password)
    await page.click('#login-submit')
    await page.waitForSelector('#status[data-state="open"]')
    await page.locator('#session', { hasText: 'admin (admin)' }).waitFor()

    await row(page, sensor.id).locator('button.keys').click()
    await page.waitForSelector(`#keys[open][data-sensor-id="${sensor.id}"]`)
    await page.fill('#key-name', 'Unidad 7')
    await page.click('#issue')
    await page.waitForSelector('#issued:not([hidden])')
    const key = await page.inputValue('#issued-key')
    expect(key).toMatch(/^vdk_/)
    const listed = page.locator('#key-list tr[data-key-id]')
    await listed.waitFor()
    expect(await listed.textContent()).toContain('Unidad 7')
    expect(await listed.textContent()).not.toContain(key)

    // The key stores this sensor's readings, and the page shows them live.
    await created(
      srv,
      '/api/v1/readings',
      { sensor_id: sensor.id, values: { co2: 612 } },
      bearer(key),
    )
    await chip(page, sensor.id, 'co2').filter({ hasText: '612' }).waitFor()

    // Shown once: gone when the dialog closes, and not in the list when it opens again.
    await page.click('#keys-close')
    expect(await page.inputValue('#issued-key')).toBe('')
    await row(page, sensor.id).locator('button.keys').click()
    await page.locator('#key-list tr[data-key-id]').waitFor()
    expect(await page.isHidden('#issued')).toBe(true)
    expect(await page.content()).not.toContain(key)

    await page.click('#key-list button.revoke')
    await page.waitForSelector('#key-list tr[data-revoked="true"]')
    const refused = await srv.api(
      'POST',
      '/api/v1/readings',
      { sensor_id: sensor.id, values: { co2: 1 } },
      bearer(key),
    )
    expect(refused.status).toBe(401)
  })

  test('a viewer sees the fleet but no device key buttons', async () => {
    server = await startAuthServer({ AUTH_MODE: 'required' })
    const viewer = await userToken(server, { username: 'lector', role: 'viewer' })
    const admin = (await server.api('POST', '/auth/login', ADMIN)).body.access_token as string
    const sensor = await created(
      server,
      '/api/v1/sensors',
      { tipo: 'aire', modelo: 'x' },
      bearer(admin),
    )
    const page = await openPage(`${server.base}/fleet.html?token=${viewer}`)
    await page.waitForSelector('#status[data-state="open"]')
    await row(page, sensor.id).waitFor()
    await page.locator('#session', { hasText: 'lector (viewer)' }).waitFor()
    expect(await row(page, sensor.id).locator('button.keys').isVisible()).toBe(false)
  })
})
