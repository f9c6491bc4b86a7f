// A lean WebSocket client on Bun.connect for the load generator: one `data` callback per TCP read (which
// may hold many frames) instead of one event object per message, so thousands of subscribers cost the
// generator less CPU than they cost the server. Text frames only, as the three servers send; answers
// pings, honours close. The same client is used against every server.
import type { Socket } from 'bun'

export interface LeanSocket {
  send(text: string): void
  close(): void
}

export interface LeanHandlers {
  text(text: string): void
  closed(): void
}

interface State {
  handlers: LeanHandlers
  upgraded: boolean
  rest: Buffer | undefined
  request: string
}

const encoder = new TextEncoder()

/** A masked client frame (RFC 6455 §5.3: every client frame is masked). */
function frame(opcode: number, payload: Uint8Array): Uint8Array {
  const len = payload.length
  const head = len < 126 ? 2 : len < 65536 ? 4 : 10
  const out = new Uint8Array(head + 4 + len)
  out[0] = 0x80 | opcode
  if (head === 2) out[1] = 0x80 | len
  else if (head === 4) {
    out[1] = 0x80 | 126
    out[2] = len >> 8
    out[3] = len & 0xff
  } else {
    out[1] = 0x80 | 127
    new DataView(out.buffer).setBigUint64(2, BigInt(len))
  }
  const mask = crypto.getRandomValues(new Uint8Array(4))
  out.set(mask, head)
  for (let i = 0; i < len; i++) out[head + 4 + i] = payload[i]! ^ mask[i & 3]!
  return out
}

function onFrames(socket: Socket<State>, chunk: Buffer) {
  const state = socket.data
  let buf = state.rest ? Buffer.concat([state.rest, chunk]) : chunk
  let at = 0
  if (!state.upgraded) {
    const end = buf.indexOf('\r\n\r\n')
    if (end < 0) {
      state.rest = buf
      return
    }
    const status = buf.toString('latin1', 0, buf.indexOf('\r\n'))
    if (!/^HTTP\/1\.1 101/.test(status)) {
      socket.end()
      return
    }
    state.upgraded = true
    at = end + 4
  }
  for (;;) {
    if (buf.length - at < 2) break
    const b0 = buf[at]!
    let len = buf[at + 1]! & 0x7f
    let head = 2
    if (len === 126) {
      if (buf.length - at < 4) break
      len = buf.readUInt16BE(at + 2)
      head = 4
    } else if (len === 127) {
      if (buf.length - at < 10) break
      len = Number(buf.readBigUInt64BE(at + 2))
      head = 10
    }
    if (buf.length - at < head + len) break
    const start = at + head
    const opcode = b0 & 0x0f
    if (opcode === 1) state.handlers.text(buf.toString('utf8', start, start + len))
    else if (opcode === 9) socket.write(frame(10, buf.subarray(start, start + len)))
    else if (opcode === 8) {
      socket.write(frame(8, buf.subarray(start, start + Math.min(len, 2))))
      socket.end()
    }
    at = start + len
  }
  state.rest = at < buf.length ? Buffer.from(buf.subarray(at)) : undefined
}

/** Opens ws://host:port/path; the handle can be used at once (frames sent before the upgrade queue in TCP). */
export function leanConnect(url: string, handlers: LeanHandlers): LeanSocket {
  const { hostname, port, pathname, search } = new URL(url)
  const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')
  const request =
    `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`
  let socket: Socket<State> | undefined
  let closed = false
  let closing = false
  const close = () => {
    if (closed) return
    closed = true
    handlers.closed()
  }
  Bun.connect<State>({
    hostname,
    port: Number(port),
    data: { handlers, upgraded: false, rest: undefined, request },
    socket: {
      open: (s) => {
        socket = s
        s.write(s.data.request)
        if (closing) s.end()
      },
      data: onFrames,
      close,
      error: close,
      connectError: close,
      end: (s) => void s.end(),
    },
  }).catch(close)
  return {
    send: (text) => void socket?.write(frame(1, encoder.encode(text))),
    close: () => {
      closing = true
      if (!socket || closed) return
      socket.write(frame(8, new Uint8Array([0x03, 0xe8])))
      socket.end()
    },
  }
}
