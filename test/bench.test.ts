// The benchmark harness (bun run bench) on toy sizes: every scenario runs and the report is well formed.
// It checks that the harness works, never how fast anything is.
import { afterAll, describe, expect, test } from 'bun:test'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import type { Results } from '../bench/lib/results'
import { tempDir } from './helpers'

const out = tempDir('vigia-bench-')
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe('bun run bench --tiny', () => {
  test('measures every scenario against all three servers and writes tables, chart and JSON', () => {
    const run = Bun.spawnSync(['bun', 'bench/run.ts', '--tiny', '--out', out], {
      cwd: join(import.meta.dir, '..'),
      stdout: 'pipe',
      stderr: 'pipe',
    })
    expect(run.stderr.toString()).toContain('[bench] wrote')
    expect(run.exitCode).toBe(0)

    const results = JSON.parse(readFileSync(join(out, 'results.json'), 'utf8')) as Results
    expect(results.meta.mode).toBe('tiny')
    expect(results.meta.clockSkewMs).toBeLessThan(1)
    expect(results.failures).toEqual([])
    const sizes = [...new Set(results.fanout.map((r) => r.size))]
    expect(sizes).toEqual([10, 40])
    for (const size of sizes)
      expect(results.fanout.filter((r) => r.size === size).map((r) => r.target)).toEqual([
        'vigia',
        'bun',
        'socketio',
      ])
    for (const run of results.fanout) {
      expect(run.connect.failed).toBe(0)
      expect(run.paths.map((p) => p.path)).toEqual(
        run.target === 'vigia' ? ['readings', 'test-event'] : ['readings'],
      )
      for (const { throughput, latency, light } of run.paths)
        for (const phase of [throughput, latency, light]) {
          expect(phase.events).toBeGreaterThan(0)
          expect(phase.errors).toBe(0)
          expect(phase.deliveries).toBe(phase.expected)
          expect(phase.expected).toBe(phase.events * run.size)
          expect(phase.short).toBe(0)
          expect(phase.latency.count).toBe(phase.deliveries)
          expect(phase.latency.p99).toBeGreaterThanOrEqual(phase.latency.p50)
        }
      // /proc counts CPU in 10 ms ticks: only the saturating phase is sure to register the server's share.
      for (const { throughput } of run.paths) expect(throughput.cpu.server).toBeGreaterThan(0)
    }
    expect(results.ingest.map((r) => [r.batch, r.concurrency])).toEqual([
      [1, 1],
      [1, 16],
      [1, 64],
      [100, 4],
      [1000, 4],
    ])
    for (const run of results.ingest) {
      expect(run.verified).toBe(true)
      expect(run.delivered).toBe(run.readings)
    }
    expect(results.recovery).toHaveLength(1)
    expect(results.recovery[0]).toMatchObject({ count: 300, inOrder: true, recovered: true })

    const markdown = readFileSync(join(out, 'BENCHMARKS.md'), 'utf8')
    for (const heading of ['### Targets', '### 1. Fan-out', '### 2. Ingest', '### 3. Connections'])
      expect(markdown).toContain(heading)
    expect(markdown).toContain('| Socket.IO on Node |')
    expect(markdown).toContain('![Latency against subscriber count](latency.svg)')

    const svg = readFileSync(join(out, 'latency.svg'), 'utf8')
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    expect(svg.match(/<path /g)).toHaveLength(8)
  }, 240_000)
})
