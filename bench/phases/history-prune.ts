// Write latency while READINGS_RETENTION prunes (issue 14): batches of 100 fleet readings POSTed one after
// the other for a while on the history database without retention, then for as long on the same
// database restarted with READINGS_RETENTION=15d (half the history to delete); the worst and p99 of each.
import type { Ctx } from '../lib/context'
import { readingAt, type VariableCount } from '../lib/fleet'
import { newHistogram, summarize } from '../lib/histogram'
import { now } from '../lib/protocol'
import type { PruneLatency } from '../lib/results'
import { call, startServer, type RunningServer, type ServerOptions } from '../lib/servers'

const iso = (ms: number) => new Date(ms).toISOString()

/** POSTs batches of 100 for `seconds`, starting at reading `offset` after `end`; latency in ms. */
async function writeFor(
  ctx: Ctx,
  server: RunningServer,
  shape: { sensors: number; end: number; vars: number },
  seconds: number,
  offset: number,
) {
  const h = newHistogram()
  const seed = ctx.results.meta.fleet!.seed
  let i = offset
  const stop = now() + seconds * 1000
  while (now() < stop) {
    const batch = []
    for (let k = 0; k < 100; k++, i++) {
      const sensor = (i % shape.sensors) + 1
      const r = readingAt(
        seed,
        sensor,
        shape.end + Math.floor(i / shape.sensors) * 1000,
        shape.vars as VariableCount,
      )
      batch.push({ sensor_id: sensor, values: r.values, timestamp: iso(r.ms) })
    }
    const res = await call(server.base, 'POST', '/api/v1/readings/batch', batch)
    if (res.status !== 201) throw new Error(`a batch answered ${res.status}`)
    h.recordValue(Math.max(1, Math.round(res.ms * 1000)))
  }
  const s = summarize(h)
  h.destroy()
  return { batches: s.count, p50: s.p50, p99: s.p99, max: s.max, next: i }
}

export async function pruneLatency(
  ctx: Ctx,
  server: RunningServer,
  restart: ServerOptions,
  shape: { sensors: number; end: number; vars: number },
): Promise<PruneLatency> {
  const seconds = ctx.plan.historyReadings >= 1_000_000 ? 30 : 5
  const before = await writeFor(ctx, server, shape, seconds, 0)
  await server.stop()
  const pruning = await startServer('vigia', 2000, {
    ...restart,
    env: { READINGS_RETENTION: '15d', READINGS_RETENTION_INTERVAL: '1' },
    startTimeoutMs: 900_000,
  })
  try {
    await Bun.sleep(1500)
    const during = await writeFor(ctx, pruning, shape, seconds, before.next)
    ctx.log(
      `  write latency (batches of 100): without retention p99 ${before.p99.toFixed(1)} ms, max ${before.max.toFixed(1)} ms; while pruning p99 ${during.p99.toFixed(1)} ms, max ${during.max.toFixed(1)} ms`,
    )
    return { seconds, before, during }
  } finally {
    await pruning.stop()
  }
}
