// POST /api/v1/readings/import refuses a bad CSV whole: every kind of bad line is a 422 naming the line
// and stores nothing; an oversized body is a 413; who may import and export under AUTH_MODE=required is
// who may store and list readings.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { adminToken, bearer, startAuthServer, userToken } from './auth-kit'
import { createSensor, startTestServer, type TestServer } from './helpers'

setDefaultTimeout(60_000)

const importCsv = (server: TestServer, csv: string, headers: Record<string, string> = {}) =>
  server.api('POST', '/api/v1/readings/import', csv, { 'content-type': 'text/csv', ...headers })

const readingCount = async (server: TestServer, headers: Record<string, string> = {}) => {
  const res = await server.api('GET', '/api/v1/readings?limit=1', undefined, headers)
  return Number(res.headers.get('x-total-count'))
}

const GOOD = '1,2025-07-20T10:30:00Z,23.5,65.2'
const HEAD = 'sensor_id,timestamp,temperatura,humedad'

describe('a bad CSV', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
    await createSensor(server)
    const res = await importCsv(server, `${HEAD}\n${GOOD}\n`)
    expect(res.body).toEqual({ imported: 1 })
  })
  afterAll(() => server.stop())

  const cases: [string, string, number, string | undefined, RegExp][] = [
    [
      'a line with too few cells',
      `${HEAD}\n${GOOD}\n1,2025-07-20T10:31:00Z,23\n`,
      3,
      undefined,
      /expect 4, got 3/,
    ],
    [
      'a line with too many cells',
      `${HEAD}\n${GOOD}\n${GOOD}\n${GOOD},7\n`,
      4,
      undefined,
      /expect 4, got 5/,
    ],
    [
      'a cell that is not a number',
      `${HEAD}\n${GOOD}\n1,2025-07-20T10:31:00Z,caliente,50\n`,
      3,
      'temperatura',
      /"caliente" is not a finite number/,
    ],
    [
      'a hexadecimal number',
      `${HEAD}\n1,2025-07-20T10:31:00Z,0x10,50\n`,
      2,
      'temperatura',
      /not a finite number/,
    ],
    [
      'a number out of its physical range',
      `${HEAD}\n${GOOD}\n${GOOD}\n1,2025-07-20T10:31:00Z,20,150\n`,
      4,
      'humedad',
      /outside 0\.\.100/,
    ],
    [
      'a timestamp that is not a date',
      `${HEAD}\n${GOOD}\n1,ayer,20,50\n`,
      3,
      'timestamp',
      /"ayer" is not a real date-time/,
    ],
    [
      'a timestamp of a day that does not exist',
      `${HEAD}\n1,2025-02-30T10:00:00Z,20,50\n`,
      2,
      'timestamp',
      /not a real date-time/,
    ],
    [
      'a timestamp before 2000',
      `${HEAD}\n${GOOD}\n1,1999-12-31T23:59:59Z,20,50\n`,
      3,
      'timestamp',
      /before 2000/,
    ],
    [
      'a sensor id that is not an id',
      `${HEAD}\n${GOOD}\nuno,2025-07-20T10:31:00Z,20,50\n`,
      3,
      'sensor_id',
      /not a sensor id/,
    ],
    [
      'an unknown sensor',
      `${HEAD}\n${GOOD}\n${GOOD}\n${GOOD}\n999,2025-07-20T10:31:00Z,20,50\n`,
      5,
      'sensor_id',
      /sensor 999 does not exist/,
    ],
    [
      'a line with no measurement',
      `${HEAD}\n${GOOD}\n1,2025-07-20T10:31:00Z,,\n`,
      3,
      undefined,
      /no measurement/,
    ],
    [
      'a bad variable name in the header',
      `sensor_id,timestamp,Temperatura\n1,2025-07-20T10:31:00Z,20\n`,
      1,
      'Temperatura',
      /not a valid variable name/,
    ],
    [
      'a variable twice in the header',
      `sensor_id,timestamp,co2,co2\n1,2025-07-20T10:31:00Z,1,2\n`,
      1,
      'co2',
      /a column twice/,
    ],
    [
      'a header without sensor_id and timestamp',
      `temperatura,humedad\n20,50\n`,
      1,
      undefined,
      /header must be sensor_id,timestamp/,
    ],
    [
      'a header with no variable',
      `sensor_id,timestamp\n1,2025-07-20T10:31:00Z\n`,
      1,
      undefined,
      /no variable column/,
    ],
    ['a header and no reading', `${HEAD}\n`, 2, undefined, /no reading/],
    [
      'a quote never closed',
      `${HEAD}\n${GOOD}\n1,"2025-07-20T10:31:00Z,20,50\n`,
      3,
      undefined,
      /Quote Not Closed/,
    ],
  ]
  for (const [what, csv, line, column, message] of cases)
    test(`${what} is a 422 naming line ${line}, and nothing is stored`, async () => {
      const res = await importCsv(server, csv)
      expect(res.status).toBe(422)
      expect(res.body.error).toMatch(/^(validation_error|unknown_reference)$/)
      expect(res.body.message).toStartWith(`Line ${line}${column ? `, ${column}` : ''}:`)
      expect(res.body.message).toMatch(message)
      expect(res.body.field).toBe(column ? `line ${line}.${column}` : `line ${line}`)
      expect(await readingCount(server)).toBe(1)
    })

  test('an empty body is a 422 and stores nothing', async () => {
    for (const body of ['', '\n\n', '   ']) {
      const res = await importCsv(server, body)
      expect(res.status).toBe(422)
      expect(res.body.message).toContain('The CSV is empty')
    }
    expect(await readingCount(server)).toBe(1)
  })

  test('a body over BODY_LIMIT_BYTES is a 413 and stores nothing', async () => {
    const line = `${GOOD}\n`
    const csv = `${HEAD}\n${line.repeat(Math.ceil((server.config.bodyLimitBytes + 1) / line.length))}`
    const res = await importCsv(server, csv)
    expect(res.status).toBe(413)
    expect(res.body.error).toBe('payload_too_large')
    expect(await readingCount(server)).toBe(1)
  })

  test('JSON is not a CSV: the import takes text/csv only', async () => {
    const res = await server.api('POST', '/api/v1/readings/import', [{ sensor_id: 1 }])
    expect(res.status).toBe(415)
    expect(res.body.message).toContain('text/csv')
    const plain = await importCsv(server, `${HEAD}\n${GOOD}\n`, { 'content-type': 'text/plain' })
    expect(plain.status).toBe(400)
    expect(await readingCount(server)).toBe(1)
  })

  test('quoted cells, CRLF line ends, a byte-order mark and blank lines are read as CSV', async () => {
    const csv = `\ufeff${HEAD}\r\n"1","2025-07-20T10:32:00Z","21.5",""\r\n\r\n1,2025-07-20T10:33:00Z,22,51\r\n`
    const res = await importCsv(server, csv)
    expect(res.body).toEqual({ imported: 2 })
    expect(await readingCount(server)).toBe(3)
  })
})

describe('import and export under AUTH_MODE=required', () => {
  let server: TestServer
  let admin: Record<string, string>
  let viewer: Record<string, string>
  let operator: Record<string, string>
  let deviceKey: Record<string, string>
  beforeAll(async () => {
    server = await startAuthServer({ AUTH_MODE: 'required', AUTH_READS: 'token' })
    admin = bearer(await adminToken(server))
    viewer = bearer(await userToken(server, { username: 'vera', role: 'viewer' }))
    operator = bearer(await userToken(server, { username: 'otto', role: 'operator' }))
    const sensor = await server.api('POST', '/api/v1/sensors', { tipo: 't', modelo: 'm' }, admin)
    const key = await server.api('POST', `/api/v1/sensors/${sensor.body.id}/keys`, {}, admin)
    expect(key.status).toBe(201)
    deviceKey = bearer(key.body.key)
  })
  afterAll(() => server.stop())

  const csv = `${HEAD}\n${GOOD}\n`

  test('import: no token 401, a viewer 403, a device key 403, an operator stores', async () => {
    expect((await importCsv(server, csv)).status).toBe(401)
    const asViewer = await importCsv(server, csv, viewer)
    expect(asViewer.status).toBe(403)
    expect(asViewer.body.message).toContain('viewer')
    expect((await importCsv(server, csv, deviceKey)).status).toBe(403)
    expect(await readingCount(server, admin)).toBe(0)
    expect((await importCsv(server, csv, operator)).body).toEqual({ imported: 1 })
    expect(await readingCount(server, admin)).toBe(1)
  })

  test('export: like the list, no token 401 under AUTH_READS=token, a viewer reads', async () => {
    const list = await server.api('GET', '/api/v1/readings')
    const exported = await server.api('GET', '/api/v1/readings/export')
    expect([list.status, exported.status]).toEqual([401, 401])
    const res = await fetch(`${server.base}/api/v1/readings/export`, { headers: viewer })
    expect(res.status).toBe(200)
    expect((await res.text()).trim().split('\n')).toHaveLength(2)
    expect((await server.api('GET', '/api/v1/readings/export', undefined, deviceKey)).status).toBe(
      403,
    )
  })
})
