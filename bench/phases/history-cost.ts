// What rollups cost ingest (issue 14: within 1.2×): the same fleet readings POSTed in batches of 1,000 into
// a fresh Vigía with HISTORY_ROLLUPS=false and with the rollup worker on, alternating, then the time the
// worker needed after the last batch to fold everything (the server's CPU going quiet).
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { Ctx } from '../lib/context'
import { freshDatabase } from '../lib/pg'
import { cpuSeconds } from '../lib/procfs'
import { now } from '../lib/protocol'
import type { RollupCost } from '../lib/results'
import { startServer, type RunningServer } from '../lib/servers'
import { sendFleet } from './extras'
import { createFleet } from './fleet-setup'

/** Seconds until the server's CPU stays under 10% of a core for one second (capped). */
async function quiet(server: RunningServer, capMs = 120_000) {
  const start = now()
  let last = cpuSeconds(server.pid)
  while (now() - start < capMs) {
    await Bun.sleep(250)
    const cpu = cpuSeconds(server.pid)
    if (cpu - last < 0.025) return (now() - start - 250) / 1000
    last = cpu
  }
  return (now() - start) / 1000
}

async function once(ctx: Ctx, engine: 'sqlite' | 'postgres', rollups: boolean, readings: number) {
  const dir = mkdtempSync(join(tmpdir(), 'vigia-bench-rollup-cost-'))
  const db = engine === 'postgres' ? await freshDatabase() : undefined
  const sensors = ctx.plan.historySensors
  let server: RunningServer | undefined
  try {
    server = await startServer('vigia', 2000, {
      ...(db ? { postgresUrl: db.url } : { sqliteFile: join(dir, 'cost.db') }),
      env: { HISTORY_ROLLUPS: String(rollups) },
      startTimeoutMs: 120_000,
    })
    await createFleet(server, sensors)
    await quiet(server)
    const t0 = now()
    await sendFleet(ctx, server, sensors, readings)
    const seconds = (now() - t0) / 1000
    const catchUp = rollups ? await quiet(server) : 0
    return { seconds, catchUp }
  } finally {
    await server?.stop()
    rmSync(dir, { recursive: true, force: true })
    await db?.drop()
  }
}

export async function rollupCost(ctx: Ctx, engine: 'sqlite' | 'postgres'): Promise<RollupCost> {
  const readings = Math.min(100_000, Math.max(2000, Math.floor(ctx.plan.historyReadings / 10)))
  const cost: RollupCost = { readings, off: [], on: [], catchUp: [] }
  for (let rep = 0; rep < 2; rep++)
    for (const rollups of [false, true]) {
      const r = await once(ctx, engine, rollups, readings)
      if (rollups) {
        cost.on.push(readings / r.seconds)
        cost.catchUp.push(r.catchUp)
      } else cost.off.push(readings / r.seconds)
      ctx.log(
        `  ${engine} ingest, rollups ${rollups ? 'on' : 'off'}: ${Math.round(readings / r.seconds)} readings/s${rollups ? `, caught up ${r.catchUp.toFixed(1)} s after the last batch` : ''}`,
      )
    }
  return cost
}
