// The CLI tester (scripts/tester.ts) run as people run it, `bun run tester …`, against a real server.
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { exitCode, percentile, type Summary } from '../scripts/tester'
import { settle, startTestServer, type TestServer } from './helpers'

// bunfig's [test] timeout is not read (oven-sh/bun#7789); real servers, brokers and browsers need more than 5 s.
setDefaultTimeout(30_000)

const ROOT = `${import.meta.dir}/..`

async function tester(args: string[], stdin?: string) {
  const proc = Bun.spawn(['bun', 'run', 'tester', ...args], {
    cwd: ROOT,
    stdin: stdin === undefined ? 'ignore' : new Blob([stdin]),
    stdout: 'pipe',
    stderr: 'pipe',
  })
  const [out, err, code] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ])
  return { out, err, code }
}

/** The number on the summary line that starts with `label`. */
function figure(out: string, label: string): number {
  const match = out.match(new RegExp(`^  ${label} +(\\d+)`, 'm'))
  if (!match) throw new Error(`no "${label}" line in:\n${out}`)
  return Number(match[1])
}

let server: TestServer
beforeAll(async () => {
  server = await startTestServer()
})
afterAll(() => server.stop())

describe('the tester', () => {
  test('continuous mode from flags sends duration × rate events, gets every one back once and in order, and exits 0', async () => {
    const watcher = await server.ws('/api/v1/ws', { channel: 'readings' })
    await watcher.connected()
    const run = await tester([
      '--url',
      server.base,
      '--mode',
      'continuous',
      '--duration',
      '2',
      '--rate',
      '50',
    ])
    expect(run.err).not.toContain('Error')
    expect(run.code).toBe(0)
    expect(run.out).toContain('Pruebas continuas')
    expect(figure(run.out, 'enviados')).toBe(100)
    expect(figure(run.out, 'recibidos')).toBe(100)
    expect(figure(run.out, 'perdidos')).toBe(0)
    expect(figure(run.out, 'duplicados')).toBe(0)
    expect(figure(run.out, 'fuera de orden')).toBe(0)
    expect(run.out).toMatch(/latencia ms +p50 [\d.]+ · p95 [\d.]+ · p99 [\d.]+ · máx [\d.]+/)

    // What it counted is what the server sent: another client saw the same readings.
    await settle(server, watcher, 'readings')
    const readings = watcher
      .receivedEvents()
      .filter((e) => e.entity_type === 'reading' && e.event_type === 'created')
    expect(readings).toHaveLength(100)
    expect(new Set(readings.map((e) => e.data.sensor_id)).size).toBe(1)
    await watcher.close()
  }, 30_000)

  test('a single test with --json prints a summary a machine can read', async () => {
    const run = await tester(['--url', server.base, '--mode', 'single', '--json'])
    expect(run.code).toBe(0)
    const summary = JSON.parse(run.out) as Summary
    expect(summary).toMatchObject({ mode: 'single', sent: 1, received: 1, lost: 0, duplicated: 0 })
    expect(summary.latency_ms!.p99).toBeGreaterThanOrEqual(0)
  })

  test("the original's menu is shown and its options work from typed input: a test event, then the stats", async () => {
    const general = await server.ws('/api/v1/ws', { channel: 'general', user_id: 'mirón' })
    await general.connected()
    const arrived = general.event((m) => m.message === 'hola desde el tester')
    const run = await tester(['--url', server.base], '4\ngeneral\nhola desde el tester\n5\n0\n')
    expect(run.code).toBe(0)
    for (const option of [
      '1. Prueba única',
      '2. Pruebas continuas (5 minutos)',
      '3. Pruebas continuas personalizadas',
      '4. Enviar evento de prueba',
      '5. Ver estadísticas',
    ])
      expect(run.out).toContain(option)
    const event = await arrived
    expect(run.out).toContain(`Evento de prueba enviado a general (seq ${event.seq})`)
    expect(run.out).toMatch(/ {2}general +\d+ {2}.*mirón/)
    await general.close()
  })

  test('exits 2 with a clear line when no server answers, and 1 whenever an event was lost', async () => {
    const run = await tester(['--url', 'http://127.0.0.1:9', '--mode', 'single'])
    expect(run.code).toBe(2)
    expect(run.err).toContain('No responde ningún servidor Vigía en http://127.0.0.1:9')

    const clean: Summary = {
      mode: 'continuous',
      variables: ['temperatura', 'humedad'],
      duration_s: 1,
      rate_requested: 10,
      rate_achieved: 10,
      sent: 10,
      http_errors: 0,
      received: 10,
      lost: 0,
      duplicated: 0,
      out_of_order: 0,
      latency_ms: null,
      reconnects: 0,
      gaps: 0,
      mismatched: 0,
    }
    expect(exitCode(clean)).toBe(0)
    expect(exitCode({ ...clean, received: 9, lost: 1 })).toBe(1)
    expect(exitCode({ ...clean, mismatched: 1 })).toBe(1)
    expect(exitCode({ ...clean, sent: 0, received: 0 })).toBe(1)
  })

  test('--variables sends readings with those measurements and checks each comes back with them', async () => {
    const watcher = await server.ws('/api/v1/ws', { channel: 'readings' })
    await watcher.connected()
    const run = await tester([
      '--url',
      server.base,
      '--mode',
      'custom',
      '--duration',
      '1',
      '--rate',
      '20',
      '--variables',
      'co2,presion,pm2_5',
      '--json',
    ])
    expect(run.code).toBe(0)
    const summary = JSON.parse(run.out) as Summary
    expect(summary).toMatchObject({
      variables: ['co2', 'presion', 'pm2_5'],
      sent: 20,
      received: 20,
      lost: 0,
      mismatched: 0,
    })
    await settle(server, watcher, 'readings')
    const readings = watcher.receivedEvents().filter((e) => e.entity_type === 'reading')
    expect(readings).toHaveLength(20)
    for (const e of readings) {
      expect(Object.keys(e.data.values).sort()).toEqual(['co2', 'pm2_5', 'presion'])
      expect(e.data).toMatchObject({ temperatura: null, humedad: null })
    }
    const bad = await tester(['--url', server.base, '--mode', 'single', '--variables', 'CO2'])
    expect(bad.code).toBe(2)
    expect(bad.err).toContain('--variables')
    await watcher.close()
  })

  test('latency percentiles are nearest-rank', () => {
    const sorted = Array.from({ length: 100 }, (_, i) => i + 1)
    expect([50, 95, 99, 100].map((p) => percentile(sorted, p))).toEqual([50, 95, 99, 100])
    expect(percentile([7], 99)).toBe(7)
  })
})
