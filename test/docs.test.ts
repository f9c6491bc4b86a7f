// /swagger works offline (assets served locally, with or without a trailing slash, Authorize included),
// /swagger/json documents every REST route, / links the client.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { ADMIN, adminToken, startAuthServer } from './auth-kit'
import { launchChromium } from './clients-kit'
import type { TestServer } from './helpers'

setDefaultTimeout(30_000)

let server: TestServer

beforeAll(async () => {
  server = await startAuthServer()
})
afterAll(() => server.stop())

const RESOURCES = ['sensors', 'locations', 'readings', 'anomalies', 'predictions'] as const

/** [method, path, tag] of every route the API must document. */
const ROUTES: [string, string, string][] = [
  ...RESOURCES.flatMap((r): [string, string, string][] => [
    ['get', `/api/v1/${r}`, r],
    ['post', `/api/v1/${r}`, r],
    ['get', `/api/v1/${r}/{id}`, r],
    ['put', `/api/v1/${r}/{id}`, r],
    ['patch', `/api/v1/${r}/{id}`, r],
    ['delete', `/api/v1/${r}/{id}`, r],
  ]),
  ['post', '/api/v1/readings/batch', 'readings'],
  ['post', '/api/v1/ws/test-event', 'websocket'],
  ['get', '/api/v1/ws/stats', 'websocket'],
  ['get', '/api/v1/ws/stats/{channel}', 'websocket'],
  ['get', '/health', 'system'],
]

describe('GET /swagger', () => {
  let page: Response
  let html: string
  beforeAll(async () => {
    page = await fetch(`${server.base}/swagger`)
    html = await page.text()
  })

  test('returns the Swagger UI page', () => {
    expect(page.status).toBe(200)
    expect(page.headers.get('content-type')).toContain('text/html')
    expect(html).toContain('SwaggerUIBundle')
    expect(html).toContain('id="swagger-ui"')
  })

  test('loads its scripts and styles from this server, and each answers 200', async () => {
    const urls = [
      ...html.matchAll(/<script[^>]*\bsrc="([^"]+)"/g),
      ...html.matchAll(/<link[^>]*\brel="stylesheet"[^>]*\bhref="([^"]+)"/g),
    ].map((m) => m[1]!)
    expect(urls.length).toBeGreaterThanOrEqual(2)
    for (const url of urls) {
      expect(url).not.toMatch(/^(https?:)?\/\//)
      const asset = await fetch(new URL(url, `${server.base}/swagger`))
      expect({ url, status: asset.status }).toEqual({ url, status: 200 })
      expect((await asset.arrayBuffer()).byteLength).toBeGreaterThan(10_000)
    }
    expect(html).not.toMatch(/https?:\/\/(cdn|unpkg|fonts)/)
  })

  test('points the UI at a document that this server serves', async () => {
    const specUrl = /"url":"([^"]+)"/.exec(html)?.[1]
    expect(specUrl).toBeDefined()
    const spec = await fetch(new URL(specUrl!, `${server.base}/swagger`))
    expect(spec.status).toBe(200)
    expect((await spec.json()).openapi).toMatch(/^3\./)
  })

  test('/swagger/ (trailing slash) is the same page, and its document URL resolves to the same document', async () => {
    const slash = await fetch(`${server.base}/swagger/`)
    expect(slash.status).toBe(200)
    const page = await slash.text()
    expect(page).toBe(html)
    const specUrl = /"url":"([^"]+)"/.exec(page)![1]!
    expect(new URL(specUrl, `${server.base}/swagger/`).pathname).toBe('/swagger/json')
  })

  test('in Chromium, /swagger/ loads the document, and Authorize with a token lets "Try it out" call a route that needs one', async () => {
    const token = await adminToken(server)
    const browser = await launchChromium()
    try {
      const page = await browser.newPage()
      const elsewhere: string[] = []
      page.on('request', (request) => {
        if (!request.url().startsWith(server.base)) elsewhere.push(request.url())
      })
      await page.goto(`${server.base}/swagger/`)
      await page.locator('.opblock-tag-section').first().waitFor()
      expect(await page.textContent('body')).not.toContain('Failed to load API definition')
      await page.locator('button.authorize').first().click()
      await page.locator('.auth-container input').first().fill(token)
      await page.locator('.auth-btn-wrapper button.authorize').first().click()
      await page.locator('.auth-btn-wrapper button.btn-done').first().click()
      const me = page.locator('#operations-auth-getApiV1AuthMe')
      await me.locator('.opblock-summary').click()
      await me.locator('.try-out__btn').click()
      await me.locator('button.execute').click()
      const status = me.locator('.live-responses-table tbody .response-col_status').first()
      await status.waitFor()
      expect((await status.textContent())?.trim()).toBe('200')
      expect(await me.locator('.live-responses-table').textContent()).toContain(ADMIN.username)
      expect(elsewhere).toEqual([])
    } finally {
      await browser.close()
    }
  }, 60_000)

  test('an unknown asset is a 404 with the error envelope', async () => {
    const res = await server.api('GET', '/swagger/assets/evil.js')
    expect(res.status).toBe(404)
    expect(res.body).toMatchObject({ error: 'not_found' })
  })
})

describe('GET /swagger/json', () => {
  let doc: { paths: Record<string, Record<string, any>>; tags: { name: string }[] }
  beforeAll(async () => {
    doc = await (await fetch(`${server.base}/swagger/json`)).json()
  })
  const operation = (method: string, path: string) => doc.paths[path]?.[method]

  for (const [method, path, tag] of ROUTES)
    test(`documents ${method.toUpperCase()} ${path} under the ${tag} tag`, () => {
      const op = operation(method, path)
      expect(op).toBeDefined()
      expect(op.tags).toContain(tag)
      expect(typeof op.summary).toBe('string')
      expect(Object.keys(op.responses ?? {}).length).toBeGreaterThan(0)
    })

  test('describes each request body as JSON with its schema', () => {
    for (const [method, path] of ROUTES) {
      const op = operation(method, path)
      if (!op.requestBody) continue
      expect(Object.keys(op.requestBody.content)).toEqual(['application/json'])
      expect(op.requestBody.content['application/json'].schema).toBeDefined()
    }
    const sensor = operation('post', '/api/v1/sensors').requestBody.content['application/json']
    expect(sensor.schema.required).toEqual(['tipo', 'modelo'])
  })

  test('describes the error responses with the error envelope', () => {
    const missing = operation('get', '/api/v1/sensors/{id}').responses['404']
    const schema = missing.content['application/json'].schema
    expect(schema.required).toEqual(expect.arrayContaining(['error', 'message']))
  })

  test('documents every HTTP route the server serves, under a declared tag, except the hidden pages and assets', () => {
    const served = server.app.routes.filter(
      (route) => route.method !== 'WS' && !(route.hooks.detail as { hide?: boolean })?.hide,
    )
    expect(served.length).toBeGreaterThan(ROUTES.length)
    const declared = doc.tags.map((t) => t.name)
    for (const route of served) {
      const path = route.path.replace(/:(\w+)/g, '{$1}').replace(/(.)\/$/, '$1')
      const op = doc.paths[path]?.[route.method.toLowerCase()]
      expect({ route: `${route.method} ${path}`, documented: op !== undefined }).toEqual({
        route: `${route.method} ${path}`,
        documented: true,
      })
      expect(typeof op.summary).toBe('string')
      expect(op.tags.length).toBeGreaterThan(0)
      for (const tag of op.tags) expect(declared).toContain(tag)
    }
  })

  test('gives no enum a default, so a value left out is never filled in silently', () => {
    const defaulted: string[] = []
    const walk = (node: unknown, path: string) => {
      if (!node || typeof node !== 'object') return
      const schema = node as Record<string, unknown>
      if (Array.isArray(schema.enum) && 'default' in schema) defaulted.push(path)
      for (const [key, value] of Object.entries(schema)) walk(value, `${path}/${key}`)
    }
    walk(doc.paths, '')
    expect(defaulted).toEqual([])
  })

  test('declares every tag it uses', () => {
    const declared = doc.tags.map((t) => t.name)
    for (const [, , tag] of ROUTES) expect(declared).toContain(tag)
  })
})

describe('GET /', () => {
  test('is an HTML page linking to /websocket_client.html', async () => {
    const res = await fetch(`${server.base}/`)
    expect(res.status).toBe(200)
    expect(res.headers.get('content-type')).toContain('text/html')
    expect(await res.text()).toMatch(/href="\/websocket_client\.html"/)
  })
})
