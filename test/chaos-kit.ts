// Chaos run: two instances (processes) on a private PostgreSQL and a private Redis, writers and
// reconnecting subscribers on both, PostgreSQL and Redis stopped and started at random moments.
// Used by test/chaos.test.ts (short) and `bun run chaos` (long, for the figures in docs/reliability.md).
import postgres from 'postgres'
import { spawnServer, startPrivatePostgres, startPrivateRedis } from './infra'

export interface ChaosOptions {
  /** Stop/start cycles of each service. */
  pgOutages: number
  redisOutages: number
  /** Each outage lasts, and each pause between two outages of one service lasts, this range (ms). */
  downMs: [number, number]
  upMs: [number, number]
  writersPerInstance: number
  subscribersPerInstance: number
  /** The bound on a refusal (503) and on every /health answer: nobody waits on a dead database. */
  promptMs: number
  /**
   * The bound on an acknowledged write: looser, since a commit on a loaded machine can take longer
   * than a refusal; it catches a write that hung.
   */
  acknowledgedMs: number
  /** Progress lines (the script prints them; the test stays quiet). */
  log?: (line: string) => void
}

type Msg = Record<string, any>

interface Subscriber {
  name: string
  channel: string
  /** Every seq received, in arrival order. */
  seqs: number[]
  /** Reading ids carried by the received events. */
  readingIds: Set<number>
  connects: number
  resumes: number
  recovered: number
  notRecovered: number
  closes: Record<string, number>
  problems: string[]
}

export interface ChaosResult {
  seconds: number
  pgOutages: number
  redisOutages: number
  writes: {
    acknowledged: number
    refused: number
    maxMs: number
    slow: string[]
    other: string[]
    /** Answer times (ms): median and 99th percentile, of acknowledged and of refused writes. */
    acknowledgedMs: { p50: number; p99: number; max: number }
    refusedMs: { p50: number; p99: number; max: number }
  }
  /** After each PostgreSQL start, ms until the next write was acknowledged. */
  recoveryMs: number[]
  health: {
    checks: number
    ok: number
    unavailable: number
    maxMs: number
    slow: string[]
    other: string[]
  }
  acknowledgedMissing: number[]
  subscribers: {
    count: number
    events: number
    connects: number
    resumes: number
    recovered: number
    notRecovered: number
    closes: Record<string, number>
    /** Seqs missing, repeated or out of order against the event log, per subscriber. */
    problems: string[]
    /** Acknowledged readings whose event a subscriber of their channel did not get. */
    undelivered: number
  }
  instances: { exitCode: number | undefined; restarted: boolean }[]
}

const between = ([min, max]: [number, number]) => min + Math.random() * (max - min)

function percentiles(values: number[]) {
  const sorted = [...values].sort((a, b) => a - b)
  const at = (q: number) =>
    Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0)
  return { p50: at(0.5), p99: at(0.99), max: Math.round(sorted.at(-1) ?? 0) }
}

/** fetch with a deadline, timed; `status` 0 when no answer came (refused connection, timeout). */
async function timed(url: string, init: RequestInit = {}) {
  const started = performance.now()
  try {
    const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) })
    const body = (await res.json().catch(() => undefined)) as Msg | undefined
    return { status: res.status, body, ms: performance.now() - started }
  } catch (error) {
    return { status: 0, body: { error: String(error) }, ms: performance.now() - started }
  }
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  const log = options.log ?? (() => undefined)
  const pg = await startPrivatePostgres()
  const redis = await startPrivateRedis()
  const env = {
    DATABASE_URL: pg.url,
    REDIS_URL: redis.url,
    REDIS_PREFIX: `chaos-${crypto.randomUUID().slice(0, 8)}`,
  }
  const servers = [
    await spawnServer({ ...env, INSTANCE_ID: 'chaos-a' }),
    await spawnServer({ ...env, INSTANCE_ID: 'chaos-b' }),
  ]
  const started = Date.now()
  try {
    const pids = servers.map((s) => s.proc.pid)
    const sensor = (
      await timed(`${servers[0]!.base}/api/v1/sensors`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ tipo: 'temperatura', modelo: 'chaos' }),
      })
    ).body!.id as number
    const readingChannel = `readings:${sensor}`
    let running = true
    const result: Omit<
      ChaosResult,
      'acknowledgedMissing' | 'subscribers' | 'instances' | 'seconds'
    > = {
      pgOutages: 0,
      redisOutages: 0,
      writes: {
        acknowledged: 0,
        refused: 0,
        maxMs: 0,
        slow: [],
        other: [],
        acknowledgedMs: { p50: 0, p99: 0, max: 0 },
        refusedMs: { p50: 0, p99: 0, max: 0 },
      },
      recoveryMs: [],
      health: { checks: 0, ok: 0, unavailable: 0, maxMs: 0, slow: [], other: [] },
    }
    const acknowledged: number[] = []
    const latency = { acknowledged: [] as number[], refused: [] as number[] }
    let pgBackAt: number | undefined

    const writer = async (base: string) => {
      for (let i = 0; running; i++) {
        const res = await timed(`${base}/api/v1/readings`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ sensor_id: sensor, temperatura: 20 + (i % 7) / 10 }),
        })
        const w = result.writes
        w.maxMs = Math.max(w.maxMs, res.ms)
        const bound = res.status === 201 ? options.acknowledgedMs : options.promptMs
        if (res.ms > bound) w.slow.push(`${res.status} in ${Math.round(res.ms)} ms`)
        if (res.status === 201) {
          w.acknowledged += 1
          acknowledged.push(res.body!.id)
          latency.acknowledged.push(res.ms)
          if (pgBackAt !== undefined) {
            result.recoveryMs.push(Date.now() - pgBackAt)
            pgBackAt = undefined
          }
        } else if (res.status === 503 && res.body?.error === 'database_unavailable') {
          w.refused += 1
          latency.refused.push(res.ms)
        } else w.other.push(`${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
        await Bun.sleep(res.status === 201 ? 5 : 50)
      }
    }

    const healthPoller = async (base: string) => {
      while (running) {
        const res = await timed(`${base}/health`)
        const h = result.health
        h.checks += 1
        h.maxMs = Math.max(h.maxMs, res.ms)
        if (res.ms > options.promptMs) h.slow.push(`${res.status} in ${Math.round(res.ms)} ms`)
        if (res.status === 200) h.ok += 1
        else if (res.status === 503 && res.body?.database?.status === 'down') h.unavailable += 1
        else h.other.push(`${res.status} ${JSON.stringify(res.body).slice(0, 200)}`)
        await Bun.sleep(100)
      }
    }

    const subscribers: Subscriber[] = []
    const subscriber = async (index: number, channel: string) => {
      const sub: Subscriber = {
        name: `subscriber ${index} on ${channel}`,
        channel,
        seqs: [],
        readingIds: new Set(),
        connects: 0,
        resumes: 0,
        recovered: 0,
        notRecovered: 0,
        closes: {},
        problems: [],
      }
      subscribers.push(sub)
      let epoch: string | undefined
      while (running) {
        const server = servers[Math.floor(Math.random() * servers.length)]!
        const last = sub.seqs.at(-1)
        const query = new URLSearchParams({ channel })
        if (last !== undefined) query.set('since', String(last))
        if (epoch) query.set('epoch', epoch)
        const url = `${server.base.replace(/^http/, 'ws')}/api/v1/ws?${query}`
        // Stay connected for a while, then move (to either instance) with since.
        const stayMs = between([300, 3000])
        await new Promise<void>((resolve) => {
          const ws = new WebSocket(url)
          let timer: Timer | undefined
          ws.onopen = () => {
            timer = setTimeout(() => ws.close(1000), stayMs)
          }
          ws.onmessage = (e) => {
            const m = JSON.parse(String(e.data)) as Msg
            if (m.type === 'connection' && m.status === 'connected') {
              sub.connects += 1
              if (last !== undefined) {
                sub.resumes += 1
                if (m.recovered) sub.recovered += 1
                else {
                  sub.notRecovered += 1
                  sub.problems.push(
                    `resume after ${last} on ${server.base} answered recovered:false`,
                  )
                }
              }
              epoch = m.epoch
              return
            }
            if (typeof m.seq !== 'number') return
            const previous = sub.seqs.at(-1)
            if (previous !== undefined && m.seq <= previous)
              sub.problems.push(`seq ${m.seq} after ${previous} (repeated or out of order)`)
            sub.seqs.push(m.seq)
            if (m.entity_type === 'reading' && m.event_type === 'created')
              sub.readingIds.add(m.entity_id)
          }
          ws.onclose = (e) => {
            clearTimeout(timer)
            const key = e.code === 1000 || e.code === 1005 ? 'normal' : `${e.code} ${e.reason}`
            sub.closes[key] = (sub.closes[key] ?? 0) + 1
            resolve()
          }
        })
        await Bun.sleep(between([20, 200]))
      }
    }

    const faults = async (
      name: string,
      count: number,
      stop: () => Promise<void>,
      start: () => Promise<void>,
      counted: () => void,
      back = () => {},
    ) => {
      for (let i = 0; i < count; i++) {
        await Bun.sleep(between(options.upMs))
        log(`${name} down (${i + 1}/${count})`)
        await stop()
        counted()
        await Bun.sleep(between(options.downMs))
        await start()
        back()
        log(`${name} up`)
      }
    }

    const workers: Promise<unknown>[] = []
    for (const server of servers) {
      for (let i = 0; i < options.writersPerInstance; i++) workers.push(writer(server.base))
      workers.push(healthPoller(server.base))
    }
    const subscriberCount = options.subscribersPerInstance * servers.length
    for (let i = 0; i < subscriberCount; i++)
      workers.push(subscriber(i, i % 2 === 0 ? readingChannel : 'general'))

    await Promise.all([
      faults(
        'PostgreSQL',
        options.pgOutages,
        pg.stop,
        pg.start,
        () => (result.pgOutages += 1),
        () => (pgBackAt = Date.now()),
      ),
      faults(
        'Redis',
        options.redisOutages,
        redis.stop,
        redis.start,
        () => (result.redisOutages += 1),
      ),
    ])
    // Both back: let the last resumes and deliveries settle, then stop the load.
    await Bun.sleep(3000)
    running = false
    await Promise.all(workers)
    result.writes.acknowledgedMs = percentiles(latency.acknowledged)
    result.writes.refusedMs = percentiles(latency.refused)

    const sql = postgres(pg.url, { max: 1, onnotice: () => {} })
    try {
      const stored = new Set(
        (await sql<{ id: number }[]>`select id from readings where sensor_id = ${sensor}`).map(
          (r) => Number(r.id),
        ),
      )
      const acknowledgedMissing = acknowledged.filter((id) => !stored.has(id))
      const events = (
        await sql<
          { seq: number; channels: string }[]
        >`select seq, channels from events order by seq`
      ).map((e) => ({ seq: Number(e.seq), channels: e.channels }))
      const problems: string[] = []
      let undelivered = 0
      for (const sub of subscribers) {
        problems.push(...sub.problems.map((p) => `${sub.name}: ${p}`))
        const first = sub.seqs[0]
        const last = sub.seqs.at(-1)
        if (first === undefined || last === undefined) {
          problems.push(`${sub.name}: received nothing`)
          continue
        }
        const expected = events
          .filter((e) => e.seq >= first && e.seq <= last && e.channels.includes(` ${sub.channel} `))
          .map((e) => e.seq)
        if (JSON.stringify(expected) !== JSON.stringify(sub.seqs)) {
          const got = new Set(sub.seqs)
          const missing = expected.filter((s) => !got.has(s))
          problems.push(
            `${sub.name}: ${sub.seqs.length} events against ${expected.length} in the log between ${first} and ${last}; missing ${missing.slice(0, 10).join(',')}`,
          )
        }
      }
      // Every acknowledged reading has its event in the log, and a readings subscriber listening
      // (resumes included) when that event was emitted got it.
      const seqOfReading = new Map<number, number>()
      for (const row of await sql<{ seq: number; payload: string; reading_id: number | null }[]>`
          select seq, payload, reading_id from events where channels like ${`% ${readingChannel} %`}`) {
        // A lean row (its frame rebuilt from the reading) names its reading instead.
        if (row.reading_id !== null) {
          seqOfReading.set(Number(row.reading_id), Number(row.seq))
          continue
        }
        const m = JSON.parse(row.payload) as Msg
        if (m.event_type === 'created') seqOfReading.set(m.entity_id, Number(row.seq))
      }
      for (const id of acknowledged) {
        const seq = seqOfReading.get(id)
        if (seq === undefined) undelivered += 1
        else
          for (const sub of subscribers)
            if (sub.channel === readingChannel && seq >= sub.seqs[0]! && seq <= sub.seqs.at(-1)!)
              if (!sub.readingIds.has(id)) undelivered += 1
      }

      const closes: Record<string, number> = {}
      for (const sub of subscribers)
        for (const [key, n] of Object.entries(sub.closes)) closes[key] = (closes[key] ?? 0) + n
      const sum = (pick: (s: Subscriber) => number) => subscribers.reduce((n, s) => n + pick(s), 0)
      return {
        ...result,
        seconds: Math.round((Date.now() - started) / 1000),
        acknowledgedMissing,
        subscribers: {
          count: subscribers.length,
          events: sum((s) => s.seqs.length),
          connects: sum((s) => s.connects),
          resumes: sum((s) => s.resumes),
          recovered: sum((s) => s.recovered),
          notRecovered: sum((s) => s.notRecovered),
          closes,
          problems,
          undelivered,
        },
        instances: servers.map((s, i) => ({
          exitCode: s.exitCode,
          restarted: s.proc.pid !== pids[i],
        })),
      }
    } finally {
      await sql.end({ timeout: 1 })
    }
  } finally {
    for (const server of servers) await server.stop()
    await redis.stop()
    await pg.destroy()
  }
}

/** The figures of a run, one per line, for people. */
export function describeChaos(r: ChaosResult): string {
  const closes = Object.entries(r.subscribers.closes)
    .map(([k, n]) => `${k}: ${n}`)
    .join('; ')
  return [
    `chaos run: ${r.seconds} s, PostgreSQL stopped ${r.pgOutages} times, Redis stopped ${r.redisOutages} times, two instances`,
    `instances: ${r.instances.map((i) => (i.exitCode === undefined && !i.restarted ? 'running, never restarted' : `exit ${i.exitCode}`)).join(' / ')}`,
    `writes: ${r.writes.acknowledged} acknowledged (201), ${r.writes.refused} refused (503 database_unavailable), ${r.writes.other.length} other; ${r.writes.slow.length} over their bound`,
    `write answer times: refused p50 ${r.writes.refusedMs.p50} ms, p99 ${r.writes.refusedMs.p99} ms, slowest ${r.writes.refusedMs.max} ms; acknowledged p50 ${r.writes.acknowledgedMs.p50} ms, p99 ${r.writes.acknowledgedMs.p99} ms, slowest ${r.writes.acknowledgedMs.max} ms`,
    `after PostgreSQL came back, the first write was acknowledged within ${r.recoveryMs.length > 0 ? `${Math.min(...r.recoveryMs)}-${Math.max(...r.recoveryMs)} ms (median ${percentiles(r.recoveryMs).p50} ms)` : 'n/a'}`,
    `acknowledged readings missing from the database: ${r.acknowledgedMissing.length}`,
    `/health: ${r.health.checks} checks, ${r.health.ok} × 200, ${r.health.unavailable} × 503 (database down), ${r.health.other.length} other; slowest ${Math.round(r.health.maxMs)} ms, ${r.health.slow.length} over the bound`,
    `subscribers: ${r.subscribers.count}, ${r.subscribers.events} events received, ${r.subscribers.connects} connections, ${r.subscribers.resumes} resumes (${r.subscribers.recovered} recovered, ${r.subscribers.notRecovered} not)`,
    `socket closes: ${closes}`,
    `streams against the event log: ${r.subscribers.problems.length} problems; acknowledged readings a listening subscriber missed: ${r.subscribers.undelivered}`,
  ].join('\n')
}
