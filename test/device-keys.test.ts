// Device keys: issued once by an admin or operator, stored as a SHA-256, they let a device store its own
// sensor's readings (single and batch) in every AUTH_MODE and nothing else; revoked keys stop at once.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { Database as SQLite } from 'bun:sqlite'
import { join } from 'node:path'
import postgres from 'postgres'
import { adminToken, bearer, startAuthServer, userToken } from './auth-kit'
import { createSensor, TEST_DATABASE, until, type TestServer } from './helpers'

setDefaultTimeout(30_000)

const reading = (sensor_id: number, temperatura = 21) => ({
  sensor_id,
  temperatura,
  timestamp: '2025-07-20T10:30:00Z',
})

async function issue(
  server: TestServer,
  sensor: number,
  auth: Record<string, string>,
  name?: string,
) {
  const res = await server.api(
    'POST',
    `/api/v1/sensors/${sensor}/keys`,
    name ? { name } : undefined,
    auth,
  )
  if (res.status !== 201)
    throw new Error(`key not issued: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body as { id: number; key: string } & Record<string, any>
}

/** Every stored key row, straight from the database. */
async function storedKeys(server: TestServer): Promise<Record<string, unknown>[]> {
  if (TEST_DATABASE === 'sqlite') {
    const db = new SQLite(join(server.dir, 'test.db'), { readonly: true })
    try {
      return db.query('select * from device_keys').all() as Record<string, unknown>[]
    } finally {
      db.close()
    }
  }
  const sql = postgres(server.config.database.url, { max: 1 })
  try {
    return await sql`select * from device_keys`
  } finally {
    await sql.end()
  }
}

for (const mode of ['open', 'required'] as const)
  describe(`AUTH_MODE=${mode}`, () => {
    let server: TestServer
    let admin: Record<string, string>
    let mine: number
    let other: number
    let device: Record<string, string>
    beforeAll(async () => {
      server = await startAuthServer({ AUTH_MODE: mode })
      admin = bearer(await adminToken(server))
      const sensor = async () =>
        (await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)).body
          .id as number
      mine = await sensor()
      other = await sensor()
      device = bearer((await issue(server, mine, admin)).key)
    })
    afterAll(() => server.stop())

    test('a device key stores its own sensor’s readings, single and batch', async () => {
      const one = await server.api('POST', '/api/v1/readings', reading(mine), device)
      expect(one.status).toBe(201)
      expect(one.body).toMatchObject({ sensor_id: mine, temperatura: 21 })
      const batch = await server.api(
        'POST',
        '/api/v1/readings/batch',
        [reading(mine, 1), reading(mine, 2)],
        device,
      )
      expect(batch.status).toBe(201)
      expect(batch.body).toHaveLength(2)
      // Ids in bodies are JSON numbers (docs/reliability.md): a numeric string is refused, key or not.
      const text = await server.api(
        'POST',
        '/api/v1/readings',
        { ...reading(mine), sensor_id: String(mine) },
        device,
      )
      expect(text.status).toBe(422)
      expect(text.body.field).toBe('sensor_id')
    })

    test('another sensor’s reading is 403, alone or anywhere in a batch, and nothing is stored', async () => {
      const before = (
        await server.api('GET', `/api/v1/readings?sensor_id=${other}`, undefined, admin)
      ).body.length
      const single = await server.api('POST', '/api/v1/readings', reading(other), device)
      expect(single.status).toBe(403)
      expect(single.body.error).toBe('forbidden')
      expect(single.body.message).toContain(`sensor ${mine}`)
      const mixed = await server.api(
        'POST',
        '/api/v1/readings/batch',
        [reading(mine), reading(other)],
        device,
      )
      expect(mixed.status).toBe(403)
      expect(
        (await server.api('GET', `/api/v1/readings?sensor_id=${other}`, undefined, admin)).body
          .length,
      ).toBe(before)
      // A body that breaks the schema is still a 422 naming the field.
      const bad = await server.api('POST', '/api/v1/readings', { temperatura: 1 }, device)
      expect(bad.status).toBe(422)
      expect(bad.body.field).toBe('sensor_id')
    })

    test('any other route with a device key is refused (403), reads included', async () => {
      const calls: [string, string, unknown?][] = [
        ['GET', '/api/v1/sensors'],
        ['GET', `/api/v1/sensors/${mine}`],
        ['GET', '/api/v1/readings'],
        ['PATCH', `/api/v1/sensors/${mine}`, { nombre: 'x' }],
        ['DELETE', `/api/v1/sensors/${mine}`],
        ['POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }],
        ['POST', `/api/v1/sensors/${mine}/keys`],
        ['GET', `/api/v1/sensors/${mine}/keys`],
        ['POST', '/api/v1/ws/test-event'],
        ['GET', '/api/v1/ws/stats'],
        ['GET', '/api/v1/users'],
        ['GET', '/api/v1/webhooks'],
        ['GET', '/api/v1/auth/me'],
        ['POST', '/auth/logout'],
      ]
      for (const [method, path, body] of calls) {
        const res = await server.api(method, path, body, device)
        expect({ method, path, status: res.status }).toEqual({ method, path, status: 403 })
      }
      expect((await server.api('GET', `/api/v1/sensors/${mine}`, undefined, admin)).status).toBe(
        200,
      )
    })

    test('an unknown or revoked key is 401, at once', async () => {
      const unknown = await server.api(
        'POST',
        '/api/v1/readings',
        reading(mine),
        bearer('vdk_nope'),
      )
      expect(unknown.status).toBe(401)
      expect(unknown.headers.get('www-authenticate')).toBe('Bearer error="invalid_token"')
      const spare = await issue(server, mine, admin)
      expect(
        (await server.api('POST', '/api/v1/readings', reading(mine), bearer(spare.key))).status,
      ).toBe(201)
      const revoked = await server.api(
        'DELETE',
        `/api/v1/sensors/${mine}/keys/${spare.id}`,
        undefined,
        admin,
      )
      expect(revoked.status).toBe(204)
      const after = await server.api('POST', '/api/v1/readings', reading(mine), bearer(spare.key))
      expect(after.status).toBe(401)
      expect(after.body.message).toContain('revoked')
      // The other key of the same sensor still works.
      expect((await server.api('POST', '/api/v1/readings', reading(mine), device)).status).toBe(201)
    })
  })

describe('managing device keys', () => {
  let server: TestServer
  let admin: Record<string, string>
  let sensor: number
  beforeAll(async () => {
    server = await startAuthServer()
    admin = bearer(await adminToken(server))
    sensor = await createSensor(server)
  })
  afterAll(() => server.stop())

  test('issue answers 201 with id and key once; the list never shows it; only its SHA-256 is stored', async () => {
    const issued = await server.api(
      'POST',
      `/api/v1/sensors/${sensor}/keys`,
      { name: 'Unidad 7' },
      admin,
    )
    expect(issued.status).toBe(201)
    expect(issued.body).toMatchObject({
      sensor_id: sensor,
      name: 'Unidad 7',
      last_used_at: null,
      revoked_at: null,
    })
    const { id, key, prefix } = issued.body
    expect(id).toEqual(expect.any(Number))
    expect(key).toMatch(/^vdk_[A-Za-z0-9_-]{43}$/)
    expect(key.startsWith(prefix)).toBe(true)
    const listed = await server.api('GET', `/api/v1/sensors/${sensor}/keys`, undefined, admin)
    expect(listed.status).toBe(200)
    const { key: _, ...shown } = issued.body
    expect(listed.body).toEqual([shown])
    expect(JSON.stringify(listed.body)).not.toContain(key)
    const rows = await storedKeys(server)
    expect(JSON.stringify(rows)).not.toContain(key)
    expect(rows.map((r) => r.hash)).toContain(
      new Bun.CryptoHasher('sha256').update(key).digest('hex'),
    )
  })

  test('admins and operators issue, list and revoke; viewers 403, no token 401', async () => {
    const operator = bearer(await userToken(server, { username: 'olga', role: 'operator' }))
    const viewer = bearer(await userToken(server, { username: 'vera', role: 'viewer' }))
    const issued = await issue(server, sensor, operator)
    expect(
      (await server.api('GET', `/api/v1/sensors/${sensor}/keys`, undefined, operator)).status,
    ).toBe(200)
    for (const [method, path] of [
      ['POST', `/api/v1/sensors/${sensor}/keys`],
      ['GET', `/api/v1/sensors/${sensor}/keys`],
      ['DELETE', `/api/v1/sensors/${sensor}/keys/${issued.id}`],
    ] as const) {
      expect((await server.api(method, path)).status).toBe(401)
      expect((await server.api(method, path, undefined, viewer)).status).toBe(403)
    }
    expect(
      (
        await server.api(
          'DELETE',
          `/api/v1/sensors/${sensor}/keys/${issued.id}`,
          undefined,
          operator,
        )
      ).status,
    ).toBe(204)
    const listed = await server.api('GET', `/api/v1/sensors/${sensor}/keys`, undefined, admin)
    expect(listed.body.find((k: any) => k.id === issued.id).revoked_at).toEqual(expect.any(String))
    // Revoking again changes nothing; a key of another sensor or an unknown sensor is 404.
    expect(
      (await server.api('DELETE', `/api/v1/sensors/${sensor}/keys/${issued.id}`, undefined, admin))
        .status,
    ).toBe(204)
    const elsewhere = await createSensor(server)
    expect(
      (
        await server.api(
          'DELETE',
          `/api/v1/sensors/${elsewhere}/keys/${issued.id}`,
          undefined,
          admin,
        )
      ).status,
    ).toBe(404)
    expect((await server.api('POST', '/api/v1/sensors/999999/keys', undefined, admin)).status).toBe(
      404,
    )
    expect((await server.api('GET', '/api/v1/sensors/999999/keys', undefined, admin)).status).toBe(
      404,
    )
    expect(
      (await server.api('POST', `/api/v1/sensors/${sensor}/keys`, { name: '' }, admin)).status,
    ).toBe(422)
  })

  test('last_used_at is set by the first use and not rewritten by every reading', async () => {
    const issued = await issue(server, sensor, admin)
    const device = bearer(issued.key)
    const shown = async () =>
      (await server.api('GET', `/api/v1/sensors/${sensor}/keys`, undefined, admin)).body.find(
        (k: any) => k.id === issued.id,
      ).last_used_at as string | null
    expect(await shown()).toBeNull()
    const before = Date.now()
    await server.api('POST', '/api/v1/readings', reading(sensor), device)
    await until(async () => (await shown()) !== null, 'last_used_at set')
    const first = await shown()
    expect(Date.parse(first!)).toBeGreaterThanOrEqual(before - 1000)
    for (let i = 0; i < 5; i++)
      await server.api('POST', '/api/v1/readings', reading(sensor, i), device)
    expect(await shown()).toBe(first)
  })

  test('deleting the sensor deletes its keys', async () => {
    const doomed = await createSensor(server)
    const issued = await issue(server, doomed, admin)
    expect((await server.api('DELETE', `/api/v1/sensors/${doomed}`, undefined, admin)).status).toBe(
      204,
    )
    expect(
      (await server.api('POST', '/api/v1/readings', reading(doomed), bearer(issued.key))).status,
    ).toBe(401)
  })
})
