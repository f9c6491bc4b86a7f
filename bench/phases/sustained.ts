// Sustained batch ingest: the batch-of-1,000 run held for half a minute (a minute in the full run) on
// each database, so the work that follows ingest in the background, the event log's retention above
// all, runs while it goes on. The short runs end before the first retention pass (every 10 s); here
// the log must stay near EVENT_RETENTION_COUNT events, and what retention costs shows in the rate.
import { Database } from 'bun:sqlite'
import postgres from 'postgres'
import { DEFAULT_EVENT_RETENTION_COUNT } from '../../src/config'
import type { Ctx } from '../lib/context'
import { postgresReachable } from '../lib/pg'
import type { IngestRun } from '../lib/results'
import type { RunningServer } from '../lib/servers'
import { BATCH, vigiaRun } from './ingest'

/** Events in the server's log now, read from its database beside it. */
async function eventsIn(server: RunningServer): Promise<number> {
  const url = server.databaseUrl!
  if (url.startsWith('sqlite:')) {
    const db = new Database(url.slice('sqlite:'.length), { readonly: true })
    try {
      return (db.query('select count(*) as n from events').get() as { n: number }).n
    } finally {
      db.close()
    }
  }
  const sql = postgres(url, { max: 1, onnotice: () => {} })
  try {
    const [row] = await sql`select count(*)::int as n from events`
    return row!.n as number
  } finally {
    await sql.end({ timeout: 2 })
  }
}

export async function sustainedPhases(ctx: Ctx) {
  const pgDown = await postgresReachable()
  const seconds = Math.round(ctx.plan.sustainedMs / 1000)
  for (const backend of ['sqlite', 'postgres'] as const) {
    if (ctx.backends && !ctx.backends.includes(backend)) continue
    const what = `ingest, sustained ${seconds} s: ${backend}`
    if (backend === 'postgres' && pgDown) {
      ctx.skip(what, pgDown)
      continue
    }
    const run = await ctx.attempt(what, () =>
      vigiaRun(ctx, BATCH[1]!, 1, {
        backend,
        load: 'fleet',
        measureMs: ctx.plan.sustainedMs,
        inspect: async (server: RunningServer, r: IngestRun) => {
          r.sustained = {
            events: await eventsIn(server),
            // The bench's servers leave EVENT_RETENTION_COUNT unset.
            retentionCount: DEFAULT_EVENT_RETENTION_COUNT,
          }
        },
      }),
    )
    if (!run) continue
    run.label = `${BATCH[1]!.label}, sustained ${seconds} s`
    ctx.results.ingest.push(run)
    ctx.log(
      `${what}: ${Math.round(run.perSecond)} readings/s, ${run.sustained!.events} events in the log (${run.delivered}/${run.readings} at the subscriber)`,
    )
  }
}
