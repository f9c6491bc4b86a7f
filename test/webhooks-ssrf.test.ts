// Webhooks cannot be turned against the server or its network: addresses are checked after resolution
// (every spelling of localhost), this server's own port is never reachable, redirects to another
// origin are not followed, and another instance refuses requests sent by a webhook dispatcher.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { loadConfig } from '../src/config'
import { classify, createAddressPolicy, type AddressClass } from '../src/modules/webhooks/address'
import { USER_AGENT } from '../src/modules/webhooks/sender'
import { adminToken, bearer, startAuthServer } from './auth-kit'
import { settle, type TestServer } from './helpers'
import { startReceiver } from './webhook-kit'

setDefaultTimeout(30_000)

/** Ways to write an address of this machine, each with the port `port`. */
const localSpellings = (port: number) => [
  `http://127.0.0.1:${port}/x`,
  `http://127.1:${port}/x`,
  `http://0x7f000001:${port}/x`,
  `http://2130706433:${port}/x`,
  `http://017700000001:${port}/x`,
  `http://127.0.0.2:${port}/x`,
  `http://[::1]:${port}/x`,
  `http://[::ffff:127.0.0.1]:${port}/x`,
  `http://[0:0:0:0:0:0:0:1]:${port}/x`,
  `http://localhost:${port}/x`,
  `http://LocalHost.:${port}/x`,
  `http://0.0.0.0:${port}/x`,
  `http://0:${port}/x`,
  `http://[::]:${port}/x`,
]

describe('address classes', () => {
  test('loopback, private, reserved and public addresses are told apart, IPv4-mapped IPv6 by its IPv4 address', () => {
    const cases: [string, AddressClass][] = [
      ['127.0.0.1', 'loopback'],
      ['127.255.0.9', 'loopback'],
      ['0.0.0.0', 'loopback'],
      ['::1', 'loopback'],
      ['::', 'loopback'],
      ['::ffff:127.0.0.1', 'loopback'],
      ['10.1.2.3', 'private'],
      ['172.16.0.1', 'private'],
      ['172.31.255.255', 'private'],
      ['192.168.1.1', 'private'],
      ['169.254.169.254', 'private'],
      ['100.64.0.1', 'private'],
      ['fd12::1', 'private'],
      ['fe80::1', 'private'],
      ['::ffff:10.0.0.1', 'private'],
      ['224.0.0.1', 'reserved'],
      ['255.255.255.255', 'reserved'],
      ['ff02::1', 'reserved'],
      ['172.32.0.1', 'public'],
      ['8.8.8.8', 'public'],
      ['2001:4860::8888', 'public'],
    ]
    for (const [address, kind] of cases)
      expect({ address, kind: classify(address) }).toEqual({ address, kind })
  })

  test('at send time every spelling of localhost is refused under WEBHOOK_ALLOW=public, allowed under loopback but never on the own port', async () => {
    const publicOnly = createAddressPolicy(
      loadConfig({ WEBHOOK_ALLOW: 'public' }).webhooks.allow,
      () => 8000,
    )
    const withLoopback = createAddressPolicy(loadConfig({}).webhooks.allow, () => 8000)
    const ranges = createAddressPolicy(
      loadConfig({ WEBHOOK_ALLOW: '127.0.0.0/8,::1' }).webhooks.allow,
      () => 8000,
    )
    for (const url of localSpellings(9999)) {
      const refused = await publicOnly.resolve(new URL(url)).then(
        () => 'allowed',
        (error) => String(error.message),
      )
      expect({ url, refused }).toEqual({
        url,
        refused: expect.stringContaining('loopback address'),
      })
      expect(await withLoopback.resolve(new URL(url))).toEqual(expect.any(String))
    }
    for (const url of localSpellings(8000)) {
      const refused = await withLoopback
        .resolve(new URL(url))
        .catch((error) => String(error.message))
      expect({ url, refused }).toEqual({
        url,
        refused: expect.stringContaining('this server itself'),
      })
    }
    expect(await ranges.resolve(new URL('http://127.0.0.1:9999/'))).toBe('127.0.0.1')
    await expect(ranges.resolve(new URL('http://10.0.0.1/'))).rejects.toThrow('private address')
  })

  test('a bad WEBHOOK_ALLOW stops the start with a line naming it', () => {
    for (const value of ['everything', '10.0.0.0/33', '300.1.1.1', 'fd00::/129'])
      expect(() => loadConfig({ WEBHOOK_ALLOW: value })).toThrow('WEBHOOK_ALLOW')
  })
})

describe('with WEBHOOK_ALLOW=public', () => {
  let server: TestServer
  let admin: Record<string, string>
  beforeAll(async () => {
    server = await startAuthServer({ WEBHOOK_ALLOW: 'public' })
    admin = bearer(await adminToken(server))
  })
  afterAll(() => server.stop())

  test('a webhook to any spelling of localhost, a private or a metadata address is a 422 naming the url', async () => {
    const urls = [
      ...localSpellings(8080),
      'http://10.0.0.1/hook',
      'http://192.168.1.10/hook',
      'http://169.254.169.254/latest/meta-data/',
      'http://[fd00::1]/hook',
    ]
    for (const url of urls) {
      const res = await server.api('POST', '/api/v1/webhooks', { url }, admin)
      expect({ url, status: res.status, field: res.body.field }).toEqual({
        url,
        status: 422,
        field: 'url',
      })
      expect(res.body.message).toContain('WEBHOOK_ALLOW')
    }
    expect((await server.api('GET', '/api/v1/webhooks', undefined, admin)).body).toEqual([])
  })
})

describe('with loopback allowed (the default)', () => {
  let server: TestServer
  let admin: Record<string, string>
  beforeAll(async () => {
    server = await startAuthServer()
    admin = bearer(await adminToken(server))
  })
  afterAll(() => server.stop())

  const testSend = async (url: string) => {
    const created = await server.api(
      'POST',
      '/api/v1/webhooks',
      { url, channels: ['anomalies'] },
      admin,
    )
    expect(created.status).toBe(201)
    const res = await server.api(
      'POST',
      `/api/v1/webhooks/${created.body.id}/test`,
      undefined,
      admin,
    )
    await server.api('DELETE', `/api/v1/webhooks/${created.body.id}`, undefined, admin)
    return res.body as { delivered: boolean; delivery: Record<string, any> }
  }

  test('this server’s own port is refused whatever the spelling, on create and on change', async () => {
    for (const url of localSpellings(server.port).map((u) =>
      u.replace('/x', '/api/v1/ws/test-event'),
    )) {
      const res = await server.api('POST', '/api/v1/webhooks', { url }, admin)
      expect({ url, status: res.status }).toEqual({ url, status: 422 })
      expect(res.body.message).toContain('this server itself')
    }
    const ok = await server.api('POST', '/api/v1/webhooks', { url: 'http://127.0.0.1:9/x' }, admin)
    const moved = await server.api(
      'PATCH',
      `/api/v1/webhooks/${ok.body.id}`,
      { url: `http://localhost:${server.port}/api/v1/users` },
      admin,
    )
    expect(moved.status).toBe(422)
    await server.api('DELETE', `/api/v1/webhooks/${ok.body.id}`, undefined, admin)
  })

  test('a redirect to another port or host spelling is not followed, nor a 302; a 307 to the same origin is', async () => {
    const target = startReceiver()
    const redirector = startReceiver((req) => {
      const path = new URL(req.url).pathname
      const to: Record<string, [number, string]> = {
        '/other-port': [307, `${target.url}/stolen`],
        '/other-host': [308, `http://localhost:${new URL(req.url).port}/stolen`],
        '/found': [302, '/moved'],
        '/same': [307, '/moved'],
      }
      const hop = to[path]
      return hop ? new Response(null, { status: hop[0], headers: { location: hop[1] } }) : 200
    })
    try {
      for (const path of ['/other-port', '/other-host', '/found']) {
        const result = await testSend(`${redirector.url}${path}`)
        expect({ path, delivered: result.delivered }).toEqual({ path, delivered: false })
        expect(result.delivery.last_error).toContain('not followed')
      }
      expect(target.received).toEqual([])
      expect(redirector.received.filter((r) => r.path === '/moved')).toEqual([])
      const same = await testSend(`${redirector.url}/same`)
      expect(same.delivered).toBe(true)
      const moved = redirector.received.filter((r) => r.path === '/moved')
      expect(moved).toHaveLength(1)
      expect(moved[0]!.signature).toBe(
        redirector.received.find((r) => r.path === '/same')!.signature,
      )
    } finally {
      target.stop()
      redirector.stop()
    }
  })

  test('another instance refuses what a webhook dispatcher sends: a webhook cannot drive any Vigía API', async () => {
    const other = await startAuthServer()
    try {
      const general = await other.ws('/api/v1/ws', { channel: 'general' })
      await general.connected()
      const result = await testSend(
        `${other.base}/api/v1/ws/test-event?channel=general&message=pwned`,
      )
      expect(result.delivered).toBe(false)
      expect(result.delivery).toMatchObject({ response_status: 403 })
      const direct = await other.api('POST', '/api/v1/ws/test-event?message=pwned', undefined, {
        'user-agent': USER_AGENT,
      })
      expect(direct.status).toBe(403)
      expect(direct.body.error).toBe('forbidden')
      await settle(other, general, 'general')
      expect(general.receivedEvents().filter((e) => e.message === 'pwned')).toEqual([])
      general.close()
    } finally {
      await other.stop()
    }
  })

  test('an endpoint that does not answer within WEBHOOK_TIMEOUT fails with a timeout', async () => {
    const slow = await startAuthServer({ WEBHOOK_TIMEOUT: '1' })
    const hang = startReceiver(
      () => new Promise<number>((resolve) => setTimeout(() => resolve(200), 3000)),
    )
    try {
      const token = bearer(await adminToken(slow))
      const created = await slow.api('POST', '/api/v1/webhooks', { url: `${hang.url}/hang` }, token)
      const started = Date.now()
      const res = await slow.api(
        'POST',
        `/api/v1/webhooks/${created.body.id}/test`,
        undefined,
        token,
      )
      expect(Date.now() - started).toBeLessThan(2500)
      expect(res.body).toMatchObject({ delivered: false })
      expect(res.body.delivery.last_error).toContain('no answer within 1 s')
    } finally {
      hang.stop()
      await slow.stop()
    }
  })
})
