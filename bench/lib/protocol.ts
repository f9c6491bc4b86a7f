// What the orchestrator and the load-generator processes say to each other, and how an event carries its stamp.

/** Milliseconds on a clock that agrees across the Bun processes of one machine (checked at start). */
export const now = () => performance.timeOrigin + performance.now()

export type Proto = 'ws' | 'sio'
export type Path = 'readings' | 'test-event'

/**
 * A measured event carries (phase, index, sent-at). Through POST /readings they ride in the reading
 * itself, inside the schema's bounds: sensor_id = phase, temperatura = index / 100, humedad = seconds
 * since the phase began (so a phase lasts under 100 s). Through test-event they are the message text.
 */
export interface Stamp {
  phase: number
  index: number
  /** Seconds after the phase's base time that the request was sent. */
  offset: number
  seq: number
}

export const MAX_INDEX = 100_000 - 1
export const MAX_PHASE_SECONDS = 95

export function readingBody(phase: number, index: number, offset: number) {
  return { sensor_id: phase, temperatura: index / 100, humedad: offset }
}

export function testEventQuery(phase: number, index: number, offset: number) {
  return `channel=readings&message=bench+${phase}+${index}+${offset}`
}

/** Reads the number that starts at `from` (a JSON number ends at `,` or `}`). */
function numberAt(text: string, from: number): number {
  let end = from
  while (end < text.length) {
    const c = text.charCodeAt(end)
    if (c === 44 || c === 125 || c === 93) break
    end += 1
  }
  return Number(text.slice(from, end))
}

export function field(text: string, name: string): number {
  const at = text.indexOf(name)
  return at < 0 ? NaN : numberAt(text, at + name.length)
}

/** Finds the stamp in a frame from any of the three servers; undefined for frames that carry none. */
export function decode(text: string): Stamp | undefined {
  const seq = field(text, '"seq":')
  const bench = text.indexOf('"message":"bench ')
  if (bench >= 0) {
    const end = text.indexOf('"', bench + 17)
    const [phase, index, offset] = text
      .slice(bench + 17, end)
      .split(' ')
      .map(Number)
    return { phase: phase!, index: index!, offset: offset!, seq }
  }
  const sensor = field(text, '"sensor_id":')
  if (Number.isNaN(sensor)) return undefined
  return {
    phase: sensor,
    index: Math.round(field(text, '"temperatura":') * 100),
    offset: field(text, '"humedad":'),
    seq,
  }
}

/** A reading frame of the fleet load: its seq, sensor and the reading's own timestamp (ISO text). */
export function decodeReading(
  text: string,
): { seq: number; sensor: number; timestamp: string } | undefined {
  if (!text.includes('"entity_type":"reading"')) return undefined
  const data = text.indexOf('"data":')
  const at = text.indexOf('"timestamp":"', data)
  if (data < 0 || at < 0) return undefined
  return {
    seq: field(text, '"seq":'),
    sensor: numberAt(text, text.indexOf('"sensor_id":', data) + 12),
    timestamp: text.slice(at + 13, text.indexOf('"', at + 13)),
  }
}

export const isConnectionMessage = (text: string) => text.includes('"type":"connection"')

// Commands from the orchestrator; each gets one reply with the same id.
export type Command =
  | { t: 'clock' }
  | { t: 'offset'; ms: number }
  | {
      t: 'connect'
      url: string
      proto: Proto
      count: number
      concurrency: number
      /** How many of them use the official socket.io-client instead of the raw protocol. */
      official: number
    }
  | {
      t: 'expect'
      phase: number
      base: number
      /** indexed: fan-out stamps; fleet: reading frames of the ingest load (counted, seq and time order). */
      kind: 'indexed' | 'fleet'
      /** Fleet: the simulated start, for sample keys. */
      startMs?: number
    }
  | { t: 'finish'; total: number; timeoutMs: number }
  | { t: 'close' }
  | {
      t: 'fanout'
      base: string
      path: Path
      phase: number
      phaseBase: number
      mode: 'window' | 'rate'
      durationMs: number
      /** Window mode: events sent but not yet delivered to every subscriber. */
      window: number
      /** Rate mode: events per second. */
      rate: number
      concurrency: number
      /** Stop after this many events (the realtime-limit rounds send a fixed number). */
      limit?: number
    }
  | { t: 'watermark'; done: number }
  | {
      /** This worker's share of the fleet: one lane (sender) per entry, each with its own sensors. */
      t: 'fleet'
      lanes: number[][]
      vars: 2 | 5
      seed: number
      startMs: number
      /** The upper-bound load instead: every reading the same, one sensor, no timestamp. */
      identical: boolean
    }
  | { t: 'ingest'; base: string; batch: number; minimal?: boolean; durationMs: number }
  | { t: 'replay'; url: string; expect: number; timeoutMs: number }
  /** A local webhook receiver: one path per endpoint (/hook/0, /hook/1, …); answers 204 at once. */
  | { t: 'receiver'; endpoints: number }
  /** The endpoints' secrets (whsec_…), known once the webhooks exist: signatures are checked from then on. */
  | { t: 'receiver-secrets'; secrets: string[] }
  | { t: 'receiver-stats'; reset: boolean }
  | { t: 'receiver-stop' }

export type Envelope = Command & { id: number }

export interface ConnectReply {
  ready: number
  failed: number
  ms: number
  error?: string
}

export interface FinishReply {
  sockets: number
  received: number
  /** Sockets that got fewer than `total` (or, for count phases, out-of-order or duplicated seqs). */
  short: number
  closed: number
  strays: number
  first: number
  last: number
  hist: string
  count: number
  /** Fleet phases: sampled readings as [key, received at] pairs, flattened. */
  samples?: number[]
}

export interface SendReply {
  ok: number
  errors: number
  error?: string
  first: number
  last: number
  /** Request round trip (µs), encoded hdr histogram. */
  hist: string
  /** Rate mode: sends that were due but held back because too many requests were in flight. */
  behind: number
  /** Fleet ingest: sampled readings as [key, sent at] pairs, flattened. */
  samples?: number[]
}

export interface ReceiverStats {
  /** Deliveries per endpoint (retries of the same webhook-id counted once). */
  counts: number[]
  duplicates: number
  /** Deliveries whose Standard Webhooks signature did not verify (or had none). */
  badSignature: number
  first: number
  last: number
  /** Event committed (its frame's timestamp, ms) → received, µs histogram. */
  hist: string
}

export interface ReplayReply {
  ms: number
  connectedMs: number
  count: number
  inOrder: boolean
  recovered: boolean | undefined
  error?: string
}

/** An unsolicited progress note from a subscriber process: every index below `done` reached every socket. */
export interface WatermarkNote {
  t: 'wm'
  phase: number
  done: number
}
