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
  test('measures every scenario against its references and writes tables, chart and JSON', () => {
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
    // The realtime path at the limit: Vigía and bare Bun alternate, every message delivered.
    expect(results.realtime.map((r) => r.target)).toEqual(['vigia', 'bun', 'vigia', 'bun'])
    for (const round of results.realtime) {
      expect(round.verified).toBe(true)
      expect(round.deliveries).toBe(round.subscribers * round.events)
      expect(round.serverCpu).toBeGreaterThan(0)
      // Warmed for at least the plan's events and never past its most.
      expect(round.warmupEvents).toBeGreaterThanOrEqual(
        results.meta.plan.realtimeWarmupEvents as number,
      )
      expect(round.warmupEvents).toBeLessThanOrEqual(
        results.meta.plan.realtimeWarmupMaxEvents as number,
      )
    }
    // Ingest on the fleet load: what the server accepts was detected, and each Vigía run on each backend
    // delivered every reading to the live subscriber; each batch run has its reference right after it.
    const fleet = results.meta.fleet!
    expect([2, 5]).toContain(fleet.vars)
    expect(fleet.frame).toMatchObject({ type: 'entity_event', entity_type: 'reading' })
    const vigia = results.ingest.filter((r) => r.system === 'vigia' && !r.webhook)
    expect([...new Set(vigia.map((r) => r.backend))]).toEqual(['sqlite', 'postgres', 'postgres-2'])
    for (const run of vigia) {
      expect(run.verified).toBe(true)
      expect(run.delivered).toBe(run.readings)
      if (run.load === 'fleet') expect(run.delivery.count).toBeGreaterThan(0)
    }
    expect(vigia.filter((r) => r.load === 'identical')).toHaveLength(1)
    // The heat wave on each database: the thresholds opened anomalies while the fleet's readings went on.
    const hot = vigia.filter((r) => r.breach)
    expect(hot.map((r) => r.backend)).toEqual(['sqlite', 'postgres'])
    for (const run of hot) expect(run.openAnomalies).toBeGreaterThan(0)
    // The sustained run on each database, the log's events counted from its database at the end.
    const long = vigia.filter((r) => r.sustained)
    expect(long.map((r) => r.backend)).toEqual(['sqlite', 'postgres'])
    for (const run of long) {
      expect(run.sustained!.events).toBeGreaterThan(0)
      expect(run.sustained!.retentionCount).toBe(100_000)
    }
    const references = results.ingest.filter((r) => r.system === 'reference')
    expect(references.map((r) => r.backend).sort()).toEqual(['postgres', 'sqlite'])
    for (const ref of references) {
      expect(ref.readings).toBeGreaterThan(0)
      const before = results.ingest[results.ingest.indexOf(ref) - 1]!
      expect([before.system, before.label, before.rep]).toEqual(['vigia', ref.label, ref.rep])
    }
    // The host's ceiling for single POSTs: the bare server, right after Vigía's run with the same senders.
    const bare = results.ingest.filter((r) => r.system === 'bare')
    expect(bare).toHaveLength(1)
    expect(bare[0]!.verified).toBe(true)
    const beforeBare = results.ingest[results.ingest.indexOf(bare[0]!) - 1]!
    expect([beforeBare.system, beforeBare.label, beforeBare.batch]).toEqual([
      'vigia',
      bare[0]!.label,
      1,
    ])
    // Phases that need routes other issues add: measured, or skipped with the reason.
    const measuredOrSkipped = (what: string, measured: unknown[]) => {
      if (measured.length > 0) return
      const why = results.skipped.filter((s) => s.what.startsWith(what)).map((s) => s.why)
      expect(why.length).toBeGreaterThan(0)
      for (const reason of why) expect(reason).toContain('not available in this build')
    }
    measuredOrSkipped('latest', results.latest)
    measuredOrSkipped('history', results.history)
    measuredOrSkipped('webhooks', results.webhooks)
    // History: the build folded the first readings into rollups with the server's own catch-up, the
    // server the rest; one sensor's 30-day count adds up to what was written across both.
    for (const h of results.history) {
      expect(h.foldedAtBuild).toBeGreaterThan(0)
      expect(h.notes.join(' ')).toContain('the 30-day count of sensor 1 matches')
      expect(h.import!.runs).toHaveLength(3)
      expect(h.import!.status).toBe(200)
    }
    expect(results.recovery).toHaveLength(1)
    expect(results.recovery[0]).toMatchObject({ count: 300, inOrder: true, recovered: true })
    // The fleet page in Chromium: every timed reading caught up with on the page, with no script error.
    expect(results.fleetPage).toHaveLength(1)
    const page = results.fleetPage![0]!
    expect(page.timed).toBeGreaterThan(0)
    expect(page.shown).toBe(page.timed)
    expect(page.dom.count).toBe(page.shown)
    expect(page.transport.count).toBeGreaterThan(0)
    expect(page.pageErrors).toEqual([])

    const markdown = readFileSync(join(out, 'BENCHMARKS.md'), 'utf8')
    for (const heading of [
      '### Targets',
      '### 1. Fan-out',
      '### 2. The realtime path at the limit',
      '### 3. Ingest',
      '#### Vigía on SQLite',
      '#### Vigía on PostgreSQL',
      '#### Two Vigía instances on one PostgreSQL',
      '#### Upper bound (identical readings)',
      '#### Thresholds breached across the fleet',
      "#### Sustained batch ingest, with the event log's retention running",
      '### 4. Connections',
      '### 8. Webhooks',
      '### 9. Fleet page',
    ])
      expect(markdown).toContain(heading)
    expect(markdown).toContain('| Vigía / plain bun:sqlite (run by run) |')
    expect(markdown).toContain('| Vigía / plain postgres.js (run by run) |')
    expect(markdown).toContain('| Socket.IO on Node |')
    expect(markdown).toContain('![Latency against subscriber count](latency.svg)')

    const svg = readFileSync(join(out, 'latency.svg'), 'utf8')
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true)
    expect(svg.trim().endsWith('</svg>')).toBe(true)
    expect(svg.match(/<path /g)).toHaveLength(8)
  }, 300_000)
})
