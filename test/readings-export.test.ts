// GET /api/v1/readings/export and POST /api/v1/readings/import against real servers: an export imports
// back identically, the export's order, filters, formats and headers, its streaming from one snapshot,
// and the import's events and latest values.
import { Database as SQLite } from 'bun:sqlite'
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { join } from 'node:path'
import postgres from 'postgres'
import {
  createSensor,
  settle,
  startTestServer,
  TEST_DATABASE,
  type TestServer,
  type WsClient,
} from './helpers'
import { IMPORT_EVENT_LIMIT } from '../src/modules/transfer/csv-import'

setDefaultTimeout(60_000)

const T0 = Date.UTC(2025, 6, 20, 10, 30)
const at = (ms: number) => new Date(ms).toISOString()

const exportText = async (server: TestServer, query = '') => {
  const res = await fetch(`${server.base}/api/v1/readings/export${query}`)
  expect(res.status).toBe(200)
  return { res, text: await res.text() }
}

const importCsv = (server: TestServer, csv: string) =>
  server.api('POST', '/api/v1/readings/import', csv, { 'content-type': 'text/csv' })

const allReadings = async (server: TestServer) => {
  const out: Record<string, any>[] = []
  for (let offset = 0; ; offset += 1000) {
    const res = await server.api('GET', `/api/v1/readings?order=asc&limit=1000&offset=${offset}`)
    out.push(...res.body)
    if (res.body.length < 1000) return out
  }
}

/** A reading as the export must carry it over: sensor, time and every measurement. */
const essence = (r: Record<string, any>) => ({
  sensor_id: r.sensor_id,
  timestamp: r.timestamp,
  values: r.values,
})

describe('an export and its import', () => {
  let source: TestServer
  let target: TestServer
  beforeAll(async () => {
    ;[source, target] = await Promise.all([startTestServer(), startTestServer()])
    for (const server of [source, target])
      for (let i = 0; i < 3; i++) await createSensor(server, { modelo: `M${i}` })
    const batch = []
    for (let k = 0; k < 40; k++) {
      const sensor = (k % 3) + 1
      // Readings of the same instant, fractional and negative values, sub-second times, odd variables.
      const values: Record<string, number> = { temperatura: -12.5 + k * 0.1 }
      if (sensor !== 2) values.humedad = 40 + k / 3
      if (k % 4 === 0) values.co2 = 400 + k * 1.0000001
      if (k % 7 === 0) values.presion_hpa = 1.5e3 + k
      batch.push({ sensor_id: sensor, values, timestamp: at(T0 + Math.floor(k / 2) * 1500) })
    }
    expect((await source.api('POST', '/api/v1/readings/batch', batch)).status).toBe(201)
  })
  afterAll(() => Promise.all([source.stop(), target.stop()]))

  test('imports back into an empty server with the same sensors, times and values', async () => {
    const { text } = await exportText(source)
    expect(text.split('\n')[0]).toBe('id,sensor_id,timestamp,co2,humedad,presion_hpa,temperatura')
    const answer = await importCsv(target, text)
    expect(answer).toMatchObject({ status: 200, body: { imported: 40 } })
    const [before, after] = await Promise.all([allReadings(source), allReadings(target)])
    expect(after.map(essence)).toEqual(before.map(essence))
    // Exported again from the target: the same file but for the ids it gave.
    const again = (await exportText(target)).text
    const dropIds = (csv: string) => csv.split('\n').map((line) => line.replace(/^\d+,/, ''))
    expect(dropIds(again)).toEqual(dropIds(text))
  })

  test('keeps the latest values and the variables of the importing server right', async () => {
    const latest = async (server: TestServer) => (await server.api('GET', '/api/v1/latest')).body
    const strip = (rows: Record<string, any>[]) =>
      rows.map((r) => ({ sensor_id: r.sensor_id, values: r.values }))
    expect(strip(await latest(target))).toEqual(strip(await latest(source)))
    const names = async (server: TestServer) =>
      (await server.api('GET', '/api/v1/variables')).body.map((v: { name: string }) => v.name)
    expect(await names(target)).toEqual(await names(source))
  })

  test('is in time order, then id order at the same instant, with the list filters', async () => {
    const rows = (await exportText(source)).text.trim().split('\n').slice(1)
    const keys = rows.map((line) => line.split(','))
    for (let i = 1; i < keys.length; i++) {
      const [id0, , t0] = keys[i - 1]!
      const [id1, , t1] = keys[i]!
      expect(t0! < t1! || (t0 === t1 && Number(id0) < Number(id1))).toBe(true)
    }
    const filtered = await exportText(
      source,
      `?sensor_id=2&from=${at(T0 + 3000)}&to=${at(T0 + 15_000)}`,
    )
    const list = await source.api(
      'GET',
      `/api/v1/readings?sensor_id=2&from=${at(T0 + 3000)}&to=${at(T0 + 15_000)}&order=asc`,
    )
    const lines = filtered.text.trim().split('\n')
    // The columns are the server's variables: sensor 2 never measured humedad, its cells are empty.
    expect(lines[0]).toBe('id,sensor_id,timestamp,co2,humedad,presion_hpa,temperatura')
    expect(lines.slice(1).every((line) => line.split(',')[4] === '')).toBe(true)
    expect(lines.slice(1).map((l) => Number(l.split(',')[0]))).toEqual(
      list.body.map((r: { id: number }) => r.id),
    )
    expect(list.body.length).toBeGreaterThan(2)
  })

  test('names a file in Content-Disposition, as CSV or NDJSON', async () => {
    const csv = (await exportText(source, '?sensor_id=3')).res
    expect(csv.headers.get('content-type')).toStartWith('text/csv')
    expect(csv.headers.get('content-disposition')).toMatch(
      /^attachment; filename="readings-sensor-3-[0-9T-]+(\.\d+)?Z\.csv"$/,
    )
    const { res, text } = await exportText(source, '?format=ndjson')
    expect(res.headers.get('content-type')).toStartWith('application/x-ndjson')
    expect(res.headers.get('content-disposition')).toMatch(/filename="readings-.*\.ndjson"$/)
    const lines = text.split('\n')
    expect(lines.pop()).toBe('')
    const parsed = lines.map((line) => JSON.parse(line))
    const list = await allReadings(source)
    expect(parsed).toEqual(list.map((r) => ({ id: r.id, ...essence(r) })))
  })

  test('a query that breaks the schema is a 422 naming the field, before any byte', async () => {
    for (const [query, field] of [
      ['?format=xml', 'format'],
      ['?from=yesterday', 'from'],
      ['?sensor_id=abc', 'sensor_id'],
    ]) {
      const res = await source.api('GET', `/api/v1/readings/export${query}`)
      expect(res.status).toBe(422)
      expect(JSON.stringify(res.body)).toContain(field!)
    }
  })
})

describe('a large export', () => {
  let server: TestServer
  let watcher: WsClient
  const SENSORS = 20
  const ROWS = 60_000
  beforeAll(async () => {
    server = await startTestServer()
    for (let i = 0; i < SENSORS; i++) await createSensor(server)
    const lines = ['sensor_id,timestamp,humedad,temperatura']
    for (let k = 0; k < ROWS; k++)
      lines.push(
        `${(k % SENSORS) + 1},${at(T0 + Math.floor(k / SENSORS) * 1000)},${(50 + (k % 13) / 7).toFixed(3)},${(20 + (k % 17) / 9).toFixed(4)}`,
      )
    const res = await importCsv(server, `${lines.join('\n')}\n`)
    expect(res.body).toEqual({ imported: ROWS })
    watcher = await server.ws('/api/v1/ws', { channel: 'readings' })
  })
  afterAll(async () => {
    watcher.close()
    await server.stop()
  })

  test('streams without a length and is one snapshot while writers run', async () => {
    const res = await fetch(`${server.base}/api/v1/readings/export`)
    expect(res.headers.get('content-length')).toBeNull()
    const reader = res.body!.getReader()
    const first = await reader.read()
    expect(first.done).toBe(false)
    const firstText = new TextDecoder().decode(first.value)
    expect(firstText.startsWith('id,sensor_id,timestamp,humedad,temperatura\n')).toBe(true)
    // The first chunk came while most of the export was still to be read.
    expect(firstText.split('\n').length).toBeLessThan(ROWS / 4)

    // Writers while the export is open: new readings, the newest and one in the middle of the range.
    const late = await server.api('POST', '/api/v1/readings/batch', [
      { sensor_id: 1, temperatura: 99, timestamp: at(T0 + 10 * 3600_000) },
      { sensor_id: 2, temperatura: 98, timestamp: at(T0 + 1500_500) },
    ])
    expect(late.status).toBe(201)

    let rest = ''
    const decoder = new TextDecoder()
    for (let next = await reader.read(); !next.done; next = await reader.read())
      rest += decoder.decode(next.value, { stream: true })
    const lines = (firstText + rest).trim().split('\n')
    expect(lines.length).toBe(ROWS + 1)
    expect(lines.some((line) => line.endsWith(',99') || line.endsWith(',98'))).toBe(false)
    const after = await exportText(server, `?from=${at(T0 + 1500_000)}&to=${at(T0 + 1501_000)}`)
    expect(after.text).toContain(',98\n')
  })

  test('a client that stops reading does not stop the server', async () => {
    const res = await fetch(`${server.base}/api/v1/readings/export?format=ndjson`)
    const reader = res.body!.getReader()
    await reader.read()
    await reader.cancel()
    const again = await exportText(server, `?sensor_id=3`)
    expect(again.text.trim().split('\n').length).toBe(ROWS / SENSORS + 1)
  })

  test('an import emits one created event per reading on readings, like a batch', async () => {
    const csv = `sensor_id,timestamp,co2\n4,${at(T0 + 5)},401\n5,${at(T0 + 6)},402\n4,${at(T0 + 7)},403\n`
    const res = await importCsv(server, csv)
    expect(res.body).toEqual({ imported: 3 })
    const events = await watcher.events(
      3,
      (m) => m.entity_type === 'reading' && m.data?.values?.co2,
    )
    expect(events.map((e) => [e.event_type, e.data.sensor_id, e.data.values.co2])).toEqual([
      ['created', 4, 401],
      ['created', 5, 402],
      ['created', 4, 403],
    ])
  })
  test('an import larger than IMPORT_EVENT_LIMIT emits one summary event instead', async () => {
    const lines = ['sensor_id,timestamp,co2']
    for (let k = 0; k <= IMPORT_EVENT_LIMIT; k++)
      lines.push(`${(k % 3) + 6},${at(T0 + 7200_000 + k * 1000)},${5000 + k}`)
    const res = await importCsv(server, `${lines.join('\n')}\n`)
    expect(res.body).toEqual({ imported: IMPORT_EVENT_LIMIT + 1 })
    const event = await watcher.event(
      (m) => m.type === 'system_event' && m.data?.action === 'readings_imported',
    )
    expect(event.data).toMatchObject({
      imported: IMPORT_EVENT_LIMIT + 1,
      sensor_ids: [6, 7, 8],
      from: at(T0 + 7200_000).replace('.000Z', 'Z'),
      to: at(T0 + 7200_000 + IMPORT_EVENT_LIMIT * 1000).replace('.000Z', 'Z'),
    })
    expect(event.data.last_id - event.data.first_id).toBe(IMPORT_EVENT_LIMIT)
    await settle(server, watcher, 'readings')
    const perReading = watcher.messages.filter(
      (m) => m.type === 'entity_event' && m.data?.values?.co2 >= 5000,
    )
    expect(perReading).toEqual([])
  })
})

describe('a reading written around the server', () => {
  let server: TestServer
  beforeAll(async () => {
    server = await startTestServer()
    await createSensor(server)
    await importCsv(server, `sensor_id,timestamp,co2\n1,${at(T0)},400\n`)
    // A row whose variable never went through the server's registry (a hand-written INSERT).
    const row = [1, JSON.stringify({ ghost: 7 }), T0 + 1000, T0]
    const insert = 'insert into readings (sensor_id, "values", timestamp, created_at)'
    if (TEST_DATABASE === 'sqlite') {
      const db = new SQLite(join(server.dir, 'test.db'))
      db.run(`${insert} values (?, ?, ?, ?)`, row as never)
      db.close()
    } else {
      const sql = postgres(server.config.database.url, { max: 1 })
      await sql.unsafe(`${insert} values (1, '{"ghost":7}'::jsonb, ${T0 + 1000}, ${T0})`)
      await sql.end()
    }
  })
  afterAll(() => server.stop())

  test('stops the CSV export with an error instead of dropping its measurement', async () => {
    // The client sees a broken transfer (never a complete file missing a measurement).
    const outcome = await fetch(`${server.base}/api/v1/readings/export`)
      .then((res) => res.text())
      .then(
        () => 'complete',
        () => 'broken',
      )
    expect(outcome).toBe('broken')
    // NDJSON carries every name as stored: nothing is lost there.
    const ndjson = await exportText(server, '?format=ndjson')
    expect(ndjson.text).toContain('"ghost"')
  })
})
