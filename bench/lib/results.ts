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
  memory: { beforeKb: number; afterKb: number; perConnectionKb: number }
  /** `latency` at the target load (200k deliveries/s at most), `light` at 50k deliveries/s at most. */
  paths: { path: Path; throughput: PhaseResult; latency: PhaseResult; light: PhaseResult }[]
}

export interface IngestRun {
  label: string
  batch: number
  concurrency: number
  rep: number
  readings: number
  errors: number
  error?: string
  /** First request sent → last reading at the live subscriber. */
  seconds: number
  perSecond: number
  /** Readings per second acknowledged over HTTP (first request → last answer). */
  committedPerSecond: number
  delivered: number
  verified: boolean
  request: Latency
  delivery: Latency
  cpu: CpuWindow
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
}

export interface Results {
  meta: Meta
  fanout: FanoutRun[]
  ingest: IngestRun[]
  recovery: RecoveryRun[]
  /** Runs that threw instead of producing figures (the run goes on without them). */
  failures: { what: string; error: string }[]
}
