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

function field(text: string, name: string): number {
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
  | { t: 'expect'; phase: number; base: number; kind: 'indexed' | 'count' }
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
    }
  | { t: 'watermark'; done: number }
  | {
      t: 'ingest'
      base: string
      batch: number
      concurrency: number
      durationMs: number
      sensorId: number
      phaseBase: number
    }
  | { t: 'replay'; url: string; expect: number; timeoutMs: number }

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
