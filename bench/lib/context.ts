// What every phase of a run shares: the plan (full, quick or tiny), how hard the generator pushes, the
// results being filled in, and the log.
import type { Backend, Results } from './results'

export const PLANS = {
  full: {
    sizes: [100, 1000, 3000, 10000],
    reps: 5,
    warmupMs: 500,
    throughputMs: 3000,
    latencyMs: 3000,
    ingestMs: 3000,
    /**
     * Before each measured ingest run, on its fresh server: the JIT compiles Vigía's request path for
     * seconds (after 0.5 s, CPU per reading was 25-30 % above the same server's after 5 s; the
     * references barely moved), and a fleet's server runs for days.
     */
    ingestWarmupMs: 5000,
    /**
     * The sustained batch run on each database: long enough for the event log's retention (every 10 s)
     * to run several times while ingest goes on.
     */
    sustainedMs: 60_000,
    /** Vigía and its reference alternate, A/B/A/B, this many times each. */
    ingestReps: 3,
    /** Every sender count and batch size, or one of each (the harness check). */
    ingestSet: 'all' as 'all' | 'few',
    recoveryEvents: 10_000,
    recoveryReps: 5,
    settleMs: 1000,
    /** Sensors of the fleet load. */
    sensors: 100,
    /** Realtime path at the limit: alternating rounds of subscribers × events, Vigía then bare Bun. */
    realtimeRounds: 5,
    realtimeSubscribers: 1000,
    realtimeEvents: 1000,
    /**
     * Events each server takes (20 subscribers) before a realtime round, so that both are measured warm.
     * JSC compiled 40-250 ms per 1,000 of Vigía's events until about 16,000, then ~15 ms; the 0.5 s
     * warm-up of the other phases gave it 400-850 events, the bare server 1,400-3,700. By session 27
     * it still compiled in every round after 20,000 (14-34 µs per event on its compiler threads: the
     * detector's step alone takes 89 ms to optimize fully, at about 32,000 events), so the warm-up
     * goes on in chunks until those threads are quiet (warmUntilCompiled, bench/phases/realtime.ts).
     */
    realtimeWarmupEvents: 20_000,
    /** The most warm-up events a round may take while waiting for the compiler threads to go quiet. */
    realtimeWarmupMaxEvents: 100_000,
    latestSensors: 10_000,
    latestRequests: 200,
    historyReadings: 10_000_000,
    historySensors: 1000,
    /** Readings the server folds into rollups itself after it starts (the build folds the rest). */
    historyServerFolds: 1_000_000,
    /** The quick run builds only the SQLite history (the PostgreSQL one takes minutes). */
    historyEngines: ['sqlite', 'postgres'] as ('sqlite' | 'postgres')[],
    importRows: 100_000,
    webhookEvents: 5000,
  },
  quick: {
    sizes: [1000, 10000],
    reps: 1,
    warmupMs: 500,
    throughputMs: 1000,
    latencyMs: 1000,
    ingestMs: 1500,
    ingestWarmupMs: 5000,
    sustainedMs: 30_000,
    ingestReps: 1,
    ingestSet: 'all' as 'all' | 'few',
    recoveryEvents: 10_000,
    recoveryReps: 1,
    settleMs: 500,
    sensors: 100,
    realtimeRounds: 3,
    realtimeSubscribers: 1000,
    realtimeEvents: 1000,
    realtimeWarmupEvents: 20_000,
    realtimeWarmupMaxEvents: 100_000,
    latestSensors: 10_000,
    latestRequests: 100,
    historyReadings: 1_000_000,
    historySensors: 1000,
    historyServerFolds: 1_000_000,
    historyEngines: ['sqlite'] as ('sqlite' | 'postgres')[],
    importRows: 50_000,
    webhookEvents: 2000,
  },
  /** Harness check only (test/bench.test.ts): every scenario on toy sizes. */
  tiny: {
    sizes: [10, 40],
    reps: 1,
    warmupMs: 100,
    throughputMs: 300,
    latencyMs: 300,
    ingestMs: 300,
    ingestWarmupMs: 100,
    sustainedMs: 1000,
    ingestReps: 1,
    ingestSet: 'few' as 'all' | 'few',
    recoveryEvents: 300,
    recoveryReps: 1,
    settleMs: 100,
    sensors: 20,
    realtimeRounds: 2,
    realtimeSubscribers: 20,
    realtimeEvents: 50,
    realtimeWarmupEvents: 200,
    realtimeWarmupMaxEvents: 400,
    latestSensors: 100,
    latestRequests: 10,
    historyReadings: 20_000,
    historySensors: 20,
    historyServerFolds: 5_000,
    historyEngines: ['sqlite', 'postgres'] as ('sqlite' | 'postgres')[],
    importRows: 500,
    webhookEvents: 50,
  },
}

export type Mode = keyof typeof PLANS
export type Plan = (typeof PLANS)['full']

/** Shared by every plan: how hard the generator pushes. */
export const LOAD = {
  /** Window mode: events sent but not yet delivered to every subscriber. */
  window: 64,
  /** Window mode: HTTP requests in flight. */
  concurrency: 16,
  /** Latency runs: 200 events/s, or fewer above 1,000 subscribers so deliveries stay at 200k/s. */
  maxRate: 200,
  deliveriesPerSecond: 200_000,
  /** Light-load latency runs: at most 50k deliveries/s, which leaves the two cores room. */
  lightDeliveriesPerSecond: 50_000,
  connectConcurrency: 100,
  finishTimeoutMs: 20_000,
  /** The fleet load's seed: the same readings in every run and every process. */
  seed: 17,
}

export interface Ctx {
  mode: Mode
  plan: Plan
  results: Results
  /** Vigía runs under Bun's CPU profiler; profiles land here. */
  profile?: string
  /** Forced variable count (`--vars`); detected from the server when unset. */
  vars?: 2 | 5
  /** Ingest backends to run (`--backends`); every one when unset. */
  backends?: Backend[]
  log(line: string): void
  /** Runs one measurement; a failure is logged and listed, and the run goes on. */
  attempt<T>(what: string, run: () => Promise<T>): Promise<T | undefined>
  skip(what: string, why: string): void
}
