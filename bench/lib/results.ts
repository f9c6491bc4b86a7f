// The shape of one benchmark run's results (bench/results.json), shared by the runner and the report.
import type { Latency } from './histogram'
import type { CpuWindow } from './procfs'
import type { Path } from './protocol'
import type { Target } from './servers'

export interface PhaseResult {
  events: number
  errors: number
  error?: string
  deliveries: number
  expected: number
  /** Sockets that missed an event or got one twice. */
  short: number
  /** Sockets the server closed during the phase. */
  closed: number
  /** First request sent → last delivery, seconds. */
  seconds: number
  deliveriesPerSecond: number
  eventsPerSecond: number
  /** Request sent → client has the message, ms. */
  latency: Latency
  /** HTTP round trip of the emitting request, ms. */
  http: Latency
  /** Rate mode: the most sends that were ever due but held back (the sender fell behind). */
  behind: number
  rate?: number
  cpu: CpuWindow
}

export interface FanoutRun {
  target: Target
  size: number
  rep: number
  connect: { ms: number; perSecond: number; failed: number }
  /** RSS after the warm-up, once a tenth of the sockets connected (absent in older runs), once all did. */
  memory: { beforeKb: number; tenthKb?: number; afterKb: number; perConnectionKb: number }
  /** `latency` at the target load (200k deliveries/s at most), `light` at 50k deliveries/s at most. */
  paths: { path: Path; throughput: PhaseResult; latency: PhaseResult; light: PhaseResult }[]
}

/** Where the readings went: Vigía on SQLite, on PostgreSQL, or two Vigía instances on one PostgreSQL. */
export type Backend = 'sqlite' | 'postgres' | 'postgres-2'

export interface IngestRun {
  label: string
  backend: Backend
  /**
   * Vigía through HTTP, the reference writer (the storage itself, no server), or the bare Bun.serve
   * server taking the same single POSTs (HTTP, JSON and a publish, nothing stored): this host's ceiling.
   */
  system: 'vigia' | 'reference' | 'bare'
  /** The realistic fleet, or the labelled upper bound (identical readings). */
  load: 'fleet' | 'identical'
  /** The webhook-cost runs (issue 15): none, one webhook on `anomalies`, one on `readings`. */
  webhook?: 'none' | 'anomalies' | 'readings'
  /** A heat wave: type thresholds that most of the fleet's sensor variables breach, every batch. */
  breach?: true
  /** Breach runs: the threshold anomalies open at the end (up to 500), so the wave is known to have hit. */
  openAnomalies?: number
  /** A long run with the event log's retention at work: events in the log at the end, and the count kept. */
  sustained?: { events: number; retentionCount: number }
  vars: number
  sensors: number
  batch: number
  concurrency: number
  rep: number
  readings: number
  errors: number
  error?: string
  /** First request sent → last reading at the live subscriber (references: time spent writing). */
  seconds: number
  perSecond: number
  /** Readings per second acknowledged over HTTP (first request → last answer). */
  committedPerSecond: number
  delivered: number
  verified: boolean
  request: Latency
  /** Request sent → subscriber has the reading, over a sample of the fleet's sensors. */
  delivery: Latency
  cpu: CpuWindow
}

/** One round of the realtime path at the limit: a fixed number of events to a fixed number of subscribers. */
export interface RealtimeRound {
  round: number
  target: Target
  subscribers: number
  events: number
  deliveries: number
  expected: number
  seconds: number
  /** Server CPU over the round (all threads, from schedstat), s. */
  serverCpu: number
  cpuPerDeliveryUs: number
  /** Server CPU per event (µs) on its event loop, JSC's compiler threads and the rest; absent before session 11. */
  threadsUsPerEvent?: { loop: number; jit: number; other: number }
  /** Warm-up events before the round (until the compiler threads went quiet); absent before session 27. */
  warmupEvents?: number
  verified: boolean
}

export interface Timing {
  label: string
  requests: number
  status: number
  p50: number
  p99: number
  max: number
  /** Rows or items in one answer. */
  rows?: number
}

export interface HistoryRun {
  engine: 'sqlite' | 'postgres'
  readings: number
  sensors: number
  /** Writing the rows directly, before the server starts, s. */
  buildSeconds: number
  /** Of them, the readings the build folded into rollups with the server's catch-up (the rest the server did). */
  foldedAtBuild?: number
  /** From start until the server's CPU went quiet (rollup catch-up, if it has one), s. */
  settleSeconds: number
  aggregate: Timing[]
  export?: { rows: number; seconds: number; perSecond: number; bytes: number; rssGrowthMb: number }
  /** The median of `runs` imports of `rows` each into successive ranges (perSecond of each in `runs`). */
  import?: { rows: number; seconds: number; perSecond: number; status: number; runs?: number[] }
  /** Ingest with the rollup worker off and on (bench/phases/history-cost.ts). */
  rollupCost?: RollupCost
  /** Write latency without retention, then while READINGS_RETENTION prunes (bench/phases/history-prune.ts). */
  prune?: PruneLatency
  notes: string[]
}

export interface PruneLatency {
  seconds: number
  before: { batches: number; p50: number; p99: number; max: number }
  during: { batches: number; p50: number; p99: number; max: number }
}

export interface RollupCost {
  readings: number
  /** Readings/s of each run, alternating off and on. */
  off: number[]
  on: number[]
  /** Seconds after the last batch until the worker had folded everything. */
  catchUp: number[]
}

export interface WebhookRun {
  endpoints: number
  events: number
  deliveries: number
  expected: number
  seconds: number
  perSecond: number
  /** Event committed (its frame's timestamp) → receiver has it, ms. */
  latency: Latency
  signed: boolean
}

/** The fleet page in Chromium with readings arriving at a fixed rate (issue 13). */
export interface FleetPageRun {
  sensors: number
  places: number
  /** Readings per second asked for, and sent. */
  rate: number
  seconds: number
  sent: number
  sentPerSecond: number
  httpErrors: number
  /** Readings whose temperatura changed the text on the page (the others change nothing to see). */
  timed: number
  shown: number
  missed: number
  /** Opening the page until every sensor shows as online, ms. */
  loadMs: number
  /** After the last send, until the page showed the last timed reading, ms. */
  drainMs: number
  /** POST sent → the table shows the value, ms. */
  dom: Latency
  /** Reference in the same page: POST sent → a bare WebSocket on `readings` has the event, ms. */
  transport: Latency
  /** Median DOM lag over the first and the last fifth of the run, ms. */
  earlyP50: number
  lateP50: number
  /** The page's own share (table shows it − bare socket has it), median over the first and last fifth, ms. */
  ownEarlyP50: number
  ownLateP50: number
  /** Readings never shown, or the page's own share grew (last fifth's median > twice the first's + 100 ms). */
  behind: boolean
  pageErrors: string[]
}

export interface RecoveryRun {
  rep: number
  events: number
  ms: number
  connectedMs: number
  perSecond: number
  count: number
  inOrder: boolean
  recovered: boolean | undefined
  rssBeforeKb: number
  rssPeakKb: number
  rssAfterKb: number
  error?: string
}

export interface Meta {
  mode: string
  command: string
  date: string
  commit: string
  dirty: boolean
  seconds: number
  machine: {
    cpu: string
    cores: number
    memoryGiB: number
    virtualized: boolean
    kernel: string
  }
  versions: Record<string, string>
  load: { before: number[]; after: number[] }
  clockSkewMs: number
  openFiles: number
  plan: Record<string, unknown>
  /** What the build under test accepts and the fleet load it got. */
  fleet?: {
    acceptsValues: boolean
    vars: number
    sensors: number
    seed: number
    startMs: number
    /** The frame Vigía sent for a sample reading (the references build theirs like it). */
    frame: Record<string, unknown>
  }
}

export interface Results {
  meta: Meta
  fanout: FanoutRun[]
  ingest: IngestRun[]
  recovery: RecoveryRun[]
  realtime: RealtimeRound[]
  latest: Timing[]
  history: HistoryRun[]
  webhooks: WebhookRun[]
  /** Absent in results from before the fleet page phase existed. */
  fleetPage?: FleetPageRun[]
  /** Phases the build under test cannot run (a route it does not have), with the reason. */
  skipped: { what: string; why: string }[]
  /** Runs that threw instead of producing figures (the run goes on without them). */
  failures: { what: string; error: string }[]
}
