// A load-generator process: holds subscribers, sends events, ingests readings and resumes from `since`,
// steered over IPC by bench/run.ts. Every figure it reports is measured here, outside the server.
import { io } from 'socket.io-client'
import { SAMPLED, sampleKey } from './lib/fleet'
import { encode, newHistogram, type Histogram } from './lib/histogram'
import { ingest, setFleet } from './lib/ingest-sender'
import { receiverSecrets, receiverStats, startReceiver, stopReceiver } from './lib/receiver'
import { leanConnect, type LeanSocket } from './lib/lean-ws'
import {
  decode,
  decodeReading,
  isConnectionMessage,
  MAX_INDEX,
  now as localNow,
  readingBody,
  testEventQuery,
  type Command,
  type ConnectReply,
  type Envelope,
  type FinishReply,
  type Proto,
  type ReplayReply,
  type SendReply,
  type WatermarkNote,
} from './lib/protocol'

/** Correction to the orchestrator's clock, measured by ping-pong at start (microseconds in practice). */
let skew = 0
const now = () => localNow() - skew
const JSON_HEADERS = { 'content-type': 'application/json' }

interface Sub {
  close(): void
  open: boolean
  got: number
  lastSeq: number
  bad: boolean
  /** Fleet phases: the last reading time seen per sensor (epoch ms). */
  lastTs?: Map<number, number>
}

interface Phase {
  id: number
  base: number
  kind: 'indexed' | 'fleet'
  startMs: number
  /** Fleet phases: [key, received at] of sampled readings. */
  samples: number[]
  counts: Uint32Array
  /** Every index below this one reached every open socket. */
  done: number
  received: number
  strays: number
  closed: number
  first: number
  last: number
  hist: Histogram
  total: number
  complete: number
  finished?: () => void
}

let subs: Sub[] = []
let openSubs = 0
let phase: Phase | undefined
let noteQueued = false
const closeWaiters = new Set<() => void>()

const send = (message: unknown) => process.send!(message)

function note() {
  if (noteQueued) return
  noteQueued = true
  setImmediate(() => {
    noteQueued = false
    if (phase) send({ t: 'wm', phase: phase.id, done: phase.done } satisfies WatermarkNote)
  })
}

function advance(p: Phase) {
  const from = p.done
  while (p.done <= MAX_INDEX && p.counts[p.done]! >= openSubs) p.done += 1
  if (p.done !== from) note()
}

function checkComplete(p: Phase) {
  if (p.finished && p.complete >= openSubs) p.finished()
}

/** A reading frame of the fleet load: counted, its seq after the last, its sensor's time not going back. */
function onReading(p: Phase, sub: Sub, text: string) {
  const r = decodeReading(text)
  if (!r) return
  const t = now()
  if (p.received === 0) p.first = t
  p.last = t
  p.received += 1
  sub.got += 1
  if (!(r.seq > sub.lastSeq)) sub.bad = true
  sub.lastSeq = r.seq
  const lastTs = (sub.lastTs ??= new Map())
  const ms = Date.parse(r.timestamp)
  const before = lastTs.get(r.sensor)
  if (!(ms >= (before ?? -Infinity))) sub.bad = true
  lastTs.set(r.sensor, ms)
  if (SAMPLED(r.sensor) && p.startMs > 0) p.samples.push(sampleKey(r.sensor, ms, p.startMs), t)
  if (sub.got === p.total) {
    p.complete += 1
    checkComplete(p)
  }
}

function onFrame(sub: Sub, text: string) {
  if (phase?.kind === 'fleet') return onReading(phase, sub, text)
  const stamp = decode(text)
  if (!stamp) return
  const p = phase
  if (!p) return
  if (stamp.phase !== p.id) {
    p.strays += 1
    return
  }
  const t = now()
  p.hist.recordValue(Math.max(1, Math.round((t - p.base - stamp.offset * 1000) * 1000)))
  if (p.received === 0) p.first = t
  p.last = t
  p.received += 1
  sub.got += 1
  if (stamp.index >= 0 && stamp.index <= MAX_INDEX) {
    p.counts[stamp.index]! += 1
    if (stamp.index === p.done) advance(p)
  } else sub.bad = true
  if (sub.got === p.total) {
    p.complete += 1
    checkComplete(p)
  }
}

function lost(sub: Sub) {
  if (!sub.open) return
  sub.open = false
  openSubs -= 1
  if (phase) {
    phase.closed += 1
    advance(phase)
    checkComplete(phase)
  }
}

function register(sub: Sub) {
  sub.open = true
  openSubs += 1
  subs.push(sub)
}

/** A subscriber over the raw WebSocket protocol (Engine.IO v4 / Socket.IO v5 framing for `sio`). */
function openRaw(url: string, proto: Proto): Promise<boolean> {
  return new Promise((resolve) => {
    let ready = false
    const sub: Sub = { close: () => ws.close(), open: false, got: 0, lastSeq: 0, bad: false }
    const timer = setTimeout(() => ws.close(), 30_000)
    const ws: LeanSocket = leanConnect(url, {
      text(text) {
        if (proto === 'sio') {
          if (text === '2') return ws.send('3')
          if (text.charCodeAt(0) === 48) return ws.send('40')
          if (text.startsWith('40')) return
          if (text.startsWith('44')) return ws.close()
        }
        if (ready) return onFrame(sub, text)
        if (!isConnectionMessage(text)) return
        ready = true
        clearTimeout(timer)
        register(sub)
        resolve(true)
      },
      closed() {
        clearTimeout(timer)
        if (!ready) return resolve(false)
        lost(sub)
        for (const waiter of closeWaiters) waiter()
      },
    })
  })
}

/** A subscriber through the official socket.io-client, to show the reference server speaks real Socket.IO. */
function openOfficial(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    const parsed = new URL(url)
    const socket = io(`http://${parsed.host}`, {
      transports: ['websocket'],
      query: { channel: parsed.searchParams.get('channel') ?? 'general' },
      reconnection: false,
      forceNew: true,
    })
    const sub: Sub = {
      close: () => socket.disconnect(),
      open: false,
      got: 0,
      lastSeq: 0,
      bad: false,
    }
    let ready = false
    socket.on('status', () => {
      ready = true
      register(sub)
      resolve(true)
    })
    socket.on('entity_event', (message: unknown) => onFrame(sub, JSON.stringify(message)))
    socket.on('connect_error', () => resolve(false))
    socket.on('disconnect', () => {
      if (!ready) return resolve(false)
      lost(sub)
      for (const waiter of closeWaiters) waiter()
    })
  })
}

async function connect(cmd: Extract<Command, { t: 'connect' }>): Promise<ConnectReply> {
  const start = now()
  let next = 0
  let ready = 0
  let failed = 0
  const lane = async () => {
    while (next < cmd.count) {
      const k = next++
      const ok = await (k < cmd.official ? openOfficial(cmd.url) : openRaw(cmd.url, cmd.proto))
      if (ok) ready += 1
      else failed += 1
    }
  }
  await Promise.all(Array.from({ length: Math.min(cmd.concurrency, cmd.count) }, lane))
  return { ready, failed, ms: now() - start }
}

async function closeAll() {
  const closing = subs
  subs = []
  await new Promise<void>((resolve) => {
    const check = () => {
      if (closing.every((s) => !s.open)) {
        closeWaiters.delete(check)
        resolve()
      }
    }
    closeWaiters.add(check)
    for (const sub of closing) sub.close()
    check()
    setTimeout(() => {
      for (const sub of closing) lost(sub)
      check()
    }, 10_000).unref()
  })
  openSubs = 0
  return {}
}

function expect(cmd: Extract<Command, { t: 'expect' }>) {
  phase?.hist.destroy()
  for (const sub of subs) {
    sub.got = 0
    sub.lastSeq = 0
    sub.bad = false
    sub.lastTs = undefined
  }
  phase = {
    id: cmd.phase,
    base: cmd.base,
    kind: cmd.kind,
    startMs: cmd.startMs ?? 0,
    samples: [],
    counts: new Uint32Array(cmd.kind === 'indexed' ? MAX_INDEX + 1 : 0),
    done: 0,
    received: 0,
    strays: 0,
    closed: 0,
    first: 0,
    last: 0,
    hist: newHistogram(),
    total: Infinity,
    complete: 0,
  }
  return {}
}

/** Waits until every open socket has `total` events of the phase (or the timeout), then reports. */
async function finish(cmd: Extract<Command, { t: 'finish' }>): Promise<FinishReply> {
  const p = phase!
  p.total = cmd.total
  p.complete = subs.filter((s) => s.open && s.got >= cmd.total).length
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, cmd.timeoutMs)
    p.finished = () => {
      clearTimeout(timer)
      resolve()
    }
    checkComplete(p)
  })
  p.finished = undefined
  const short = subs.filter((s) => s.got !== cmd.total || s.bad).length
  return {
    sockets: subs.length,
    received: p.received,
    short,
    closed: p.closed,
    strays: p.strays,
    first: p.first,
    last: p.last,
    hist: encode(p.hist),
    count: p.hist.totalCount,
    samples: p.kind === 'fleet' ? p.samples : undefined,
  }
}

let watermark = 0
let pump: (() => void) | undefined

/** Emits events through the server's real path, either as fast as the window allows or at a fixed rate. */
function fanout(cmd: Extract<Command, { t: 'fanout' }>): Promise<SendReply> {
  const url =
    cmd.path === 'readings' ? `${cmd.base}/api/v1/readings` : `${cmd.base}/api/v1/ws/test-event`
  const hist = newHistogram()
  let index = 0
  let inflight = 0
  let ok = 0
  let errors = 0
  let behind = 0
  let error: string | undefined
  let first = 0
  let last = 0
  watermark = 0
  const start = now()
  const deadline = start + cmd.durationMs
  return new Promise((resolve) => {
    const fire = () => {
      const i = index++
      const sentAt = now()
      if (i === 0) first = sentAt
      const offset = (sentAt - cmd.phaseBase) / 1000
      inflight += 1
      const request = async () =>
        cmd.path === 'readings'
          ? fetch(url, {
              method: 'POST',
              headers: JSON_HEADERS,
              body: JSON.stringify(readingBody(cmd.phase, i, offset)),
            })
          : fetch(`${url}?${testEventQuery(cmd.phase, i, offset)}`, { method: 'POST' })
      request()
        .then(async (res) => {
          const text = await res.text()
          if (res.ok) ok += 1
          else {
            errors += 1
            error ??= `${res.status} ${text.slice(0, 200)}`
          }
        })
        .catch((e) => {
          errors += 1
          error ??= String(e)
        })
        .finally(() => {
          inflight -= 1
          last = now()
          hist.recordValue(Math.max(1, Math.round((last - sentAt) * 1000)))
          step()
        })
    }
    const step = () => {
      const t = now()
      const limit = Math.min(MAX_INDEX, (cmd.limit ?? Infinity) - 1)
      if (t < deadline && index <= limit) {
        if (cmd.mode === 'window') {
          while (inflight < cmd.concurrency && index < watermark + cmd.window && index <= limit)
            fire()
        } else {
          const due = Math.min(limit + 1, Math.floor(((t - start) * cmd.rate) / 1000) + 1)
          while (index < due && inflight < cmd.concurrency) fire()
          behind = Math.max(behind, due - index)
        }
        return
      }
      if (inflight > 0) return
      clearInterval(timer)
      pump = undefined
      resolve({ ok, errors, error, first, last, hist: encode(hist), behind })
      hist.destroy()
    }
    const timer = setInterval(step, 1)
    pump = step
    step()
  })
}

/** Reconnects with `since` and times the replay of every missed event. */
function replay(cmd: Extract<Command, { t: 'replay' }>): Promise<ReplayReply> {
  return new Promise((resolve) => {
    const start = now()
    let connectedMs = 0
    let count = 0
    let lastSeq = 0
    let inOrder = true
    let recovered: boolean | undefined
    let settled = false
    const ws = new WebSocket(cmd.url)
    const done = (error?: string) => {
      if (settled) return
      settled = true
      clearTimeout(timer)
      const ms = now() - start
      ws.close()
      resolve({ ms, connectedMs, count, inOrder, recovered, error })
    }
    const timer = setTimeout(() => done('timeout'), cmd.timeoutMs)
    ws.onmessage = (event) => {
      const text = event.data as string
      if (isConnectionMessage(text)) {
        connectedMs = now() - start
        recovered = (JSON.parse(text) as { recovered?: boolean }).recovered
        return
      }
      const seq = decode(text)?.seq ?? NaN
      count += 1
      if (!(seq > lastSeq)) inOrder = false
      lastSeq = seq
      if (count === cmd.expect) done()
    }
    ws.onclose = () => done('closed before the replay ended')
  })
}

async function handle(cmd: Command): Promise<unknown> {
  switch (cmd.t) {
    case 'clock':
      return { at: localNow() }
    case 'offset':
      skew = cmd.ms
      return {}
    case 'connect':
      return connect(cmd)
    case 'expect':
      return expect(cmd)
    case 'finish':
      return finish(cmd)
    case 'close':
      return closeAll()
    case 'fanout':
      return fanout(cmd)
    case 'watermark':
      watermark = Math.max(watermark, cmd.done)
      pump?.()
      return undefined
    case 'fleet':
      return setFleet(cmd)
    case 'ingest':
      return ingest(cmd, now)
    case 'replay':
      return replay(cmd)
    case 'receiver':
      return startReceiver(cmd.endpoints, now)
    case 'receiver-secrets':
      return receiverSecrets(cmd.secrets)
    case 'receiver-stats':
      return receiverStats(cmd.reset)
    case 'receiver-stop':
      return stopReceiver()
  }
}

process.on('message', (message: Envelope) => {
  handle(message).then(
    (reply) => reply !== undefined && send({ id: message.id, ...reply }),
    (error) => send({ id: message.id, error: String(error?.stack ?? error) }),
  )
})
send({ t: 'up' })
