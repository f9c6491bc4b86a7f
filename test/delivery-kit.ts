// Test kit for the delivery tests: a WebSocket peer on a bare TCP socket that reads only when told to
// and never answers pings (a stalled or dead client), and servers that live for one test.
import { afterEach } from 'bun:test'
import { startTestServer, type TestServer } from './helpers'

export interface Frame {
  opcode: number
  payload: Buffer
}

type Waiter = { pred: (f: Frame) => boolean; resolve: (f: Frame) => void }

export class RawWs {
  readonly frames: Frame[] = []
  /** Resolves when the TCP connection ends (the server closed or cut it). */
  readonly ended: Promise<void>
  private buffer = Buffer.alloc(0)
  private handshake = Promise.withResolvers<void>()
  private upgraded = false
  private waiters: Waiter[] = []
  private socket!: Awaited<ReturnType<typeof Bun.connect>>
  private endedResolve!: () => void

  private constructor() {
    this.ended = new Promise((resolve) => (this.endedResolve = resolve))
  }

  /** Connects to `url` (http://host:port/path?query) and completes the WebSocket handshake. */
  static async connect(url: string): Promise<RawWs> {
    const raw = new RawWs()
    const { hostname, port, pathname, search } = new URL(url)
    raw.socket = await Bun.connect({
      hostname,
      port: Number(port),
      socket: {
        data: (_, data) => raw.receive(Buffer.from(data)),
        close: () => raw.endedResolve(),
        error: () => raw.endedResolve(),
      },
    })
    const key = Buffer.from(crypto.getRandomValues(new Uint8Array(16))).toString('base64')
    raw.socket.write(
      `GET ${pathname}${search} HTTP/1.1\r\nHost: ${hostname}:${port}\r\nUpgrade: websocket\r\n` +
        `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n\r\n`,
    )
    await raw.handshake.promise
    return raw
  }

  /** Stops reading: the kernel buffers fill, then the server's buffer for this socket grows. */
  pause() {
    this.socket.pause()
  }

  resume() {
    this.socket.resume()
  }

  /** Text frames parsed as JSON, in arrival order. */
  messages(): Record<string, any>[] {
    return this.frames.filter((f) => f.opcode === 1).map((f) => JSON.parse(f.payload.toString()))
  }

  /** The first frame (already received or still to come) that matches. */
  next(pred: (f: Frame) => boolean, timeout = 10_000): Promise<Frame> {
    const found = this.frames.find(pred)
    if (found) return Promise.resolve(found)
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no matching frame within ${timeout} ms`)),
        timeout,
      )
      this.waiters.push({ pred, resolve: (f) => (clearTimeout(timer), resolve(f)) })
    })
  }

  /** The close frame's code and reason, once it arrives. */
  async closeFrame(timeout?: number) {
    const frame = await this.next((f) => f.opcode === 8, timeout)
    return { code: frame.payload.readUInt16BE(0), reason: frame.payload.subarray(2).toString() }
  }

  end() {
    this.socket.end()
  }

  private receive(chunk: Buffer) {
    this.buffer = Buffer.concat([this.buffer, chunk])
    if (!this.upgraded) {
      const end = this.buffer.indexOf('\r\n\r\n')
      if (end < 0) return
      const head = this.buffer.subarray(0, end).toString()
      if (!head.startsWith('HTTP/1.1 101')) throw new Error(`handshake refused: ${head}`)
      this.buffer = this.buffer.subarray(end + 4)
      this.upgraded = true
      this.handshake.resolve()
    }
    for (;;) {
      const frame = this.parse()
      if (!frame) return
      this.frames.push(frame)
      for (const waiter of this.waiters.filter((w) => w.pred(frame))) {
        this.waiters.splice(this.waiters.indexOf(waiter), 1)
        waiter.resolve(frame)
      }
    }
  }

  /** One unmasked server frame off the front of the buffer, or undefined if it is not all in yet. */
  private parse(): Frame | undefined {
    const b = this.buffer
    if (b.length < 2) return
    let length = b[1]! & 0x7f
    let offset = 2
    if (length === 126) {
      if (b.length < 4) return
      length = b.readUInt16BE(2)
      offset = 4
    } else if (length === 127) {
      if (b.length < 10) return
      length = Number(b.readBigUInt64BE(2))
      offset = 10
    }
    if (b.length < offset + length) return
    const frame = {
      opcode: b[0]! & 0x0f,
      payload: Buffer.from(b.subarray(offset, offset + length)),
    }
    this.buffer = b.subarray(offset + length)
    return frame
  }
}

/**
 * `start(env)` for a file whose tests each start their own servers: every server a test started is
 * stopped after it.
 */
export function serversPerTest() {
  const servers: TestServer[] = []
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => s.stop()))
  })
  return async (env: Record<string, string> = {}) => {
    const server = await startTestServer(env)
    servers.push(server)
    return server
  }
}
