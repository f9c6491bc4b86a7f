// The orchestrator's side of the child processes it steers over IPC: the three load generators
// (bench/worker.ts, started once per run) and a reference writer (bench/reference.ts, one per run).
import { now, type Command, type WatermarkNote } from './protocol'
import { ROOT } from './servers'

/** A child process answering numbered commands over IPC. */
export class Child<C extends { t: string }> {
  private nextId = 1
  private readonly pending = new Map<number, (reply: any) => void>()
  private readonly proc: ReturnType<typeof Bun.spawn>
  onNote: (note: WatermarkNote) => void = () => {}
  readonly up: Promise<void>

  /** `env`: added to this process's environment for the child. */
  constructor(script: string, env?: Record<string, string>) {
    let up!: () => void
    this.up = new Promise((resolve) => (up = resolve))
    this.proc = Bun.spawn(['bun', script], {
      cwd: ROOT,
      ...(env && { env: { ...process.env, ...env } }),
      stdout: 'inherit',
      stderr: 'inherit',
      ipc: (message: any) => {
        if (message.t === 'up') return up()
        if (message.t === 'wm') return this.onNote(message)
        const resolve = this.pending.get(message.id)
        this.pending.delete(message.id)
        resolve?.(message)
      },
    })
    void this.proc.exited.then(() => {
      for (const [id, resolve] of this.pending) {
        this.pending.delete(id)
        resolve({ error: `${script} exited` })
      }
    })
  }

  get pid() {
    return this.proc.pid
  }

  call<R>(command: C): Promise<R> {
    const id = this.nextId++
    return new Promise<R>((resolve, reject) => {
      this.pending.set(id, (reply) =>
        reply.error ? reject(new Error(`${reply.error}`)) : resolve(reply),
      )
      this.proc.send({ id, ...command })
    })
  }

  tell(command: C) {
    this.proc.send({ id: 0, ...command })
  }

  stop() {
    this.proc.kill()
    return this.proc.exited
  }
}

export type Worker = Child<Command>

/** Measures a worker's clock against ours by ping-pong and hands it the correction. */
export async function calibrate(worker: Worker): Promise<number> {
  let best = { rtt: Infinity, offset: 0 }
  for (let i = 0; i < 50; i++) {
    const t1 = now()
    const { at } = await worker.call<{ at: number }>({ t: 'clock' })
    const t2 = now()
    if (t2 - t1 < best.rtt) best = { rtt: t2 - t1, offset: at - (t1 + t2) / 2 }
  }
  await worker.call({ t: 'offset', ms: best.offset })
  return best.offset
}

/** The load generators: workers[0] and [1] hold subscribers, [2] sends (ingest uses [1] and [2]). */
export const workers: Worker[] = []
export const pids = () => workers.map((w) => w.pid)

/** Fan-out's flow control: the subscribers' progress notes, relayed to the sender as a watermark. */
let relay: { phase: number; done: Map<Worker, number>; sent: number; sender: Worker } | undefined

export function setRelay(phase: number, subscribers: Worker[], sender: Worker) {
  relay = { phase, done: new Map(subscribers.map((w) => [w, 0])), sent: 0, sender }
}

export function clearRelay() {
  relay = undefined
}

function onNote(worker: Worker, note: WatermarkNote) {
  if (!relay || note.phase !== relay.phase || !relay.done.has(worker)) return
  relay.done.set(worker, note.done)
  const low = Math.min(...relay.done.values())
  if (low > relay.sent) {
    relay.sent = low
    relay.sender.tell({ t: 'watermark', done: low })
  }
}

export async function startWorkers(n = 3): Promise<number[]> {
  for (let i = 0; i < n; i++) {
    const worker = new Child<Command>('bench/worker.ts')
    worker.onNote = (note) => onNote(worker, note)
    workers.push(worker)
  }
  await Promise.all(workers.map((w) => w.up))
  return Promise.all(workers.map(calibrate))
}

export const stopWorkers = () => Promise.all(workers.map((w) => w.stop()))

/** Splits n as evenly as possible over k parts. */
export const split = (n: number, k: number) =>
  Array.from({ length: k }, (_, i) => Math.floor(n / k) + (i < n % k ? 1 : 0))

export const sum = (xs: number[]) => xs.reduce((a, b) => a + b, 0)
