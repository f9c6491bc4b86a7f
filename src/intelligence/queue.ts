// A small in-process job queue: one job at a time, in order, off the request path; bounded so a flood
// of requests is refused instead of piling up.

export class JobQueue {
  private readonly jobs: (() => Promise<void>)[] = []
  private running: Promise<void> | undefined
  private stopped = false
  private idleWaiters: (() => void)[] = []

  constructor(
    private readonly limit: number,
    private readonly onError: (error: unknown) => void,
  ) {}

  /** Jobs waiting plus the one running. */
  get size() {
    return this.jobs.length + (this.running ? 1 : 0)
  }

  get full() {
    return this.stopped || this.size >= this.limit
  }

  /** Queues a job; false when stopped or full. */
  push(job: () => Promise<void>): boolean {
    if (this.full) return false
    this.jobs.push(job)
    this.pump()
    return true
  }

  /** Resolves once nothing is queued or running. */
  idle(): Promise<void> {
    if (this.size === 0) return Promise.resolve()
    return new Promise((resolve) => this.idleWaiters.push(resolve))
  }

  /** Drops what is queued and waits for the running job. */
  async stop() {
    this.stopped = true
    this.jobs.length = 0
    await this.running
  }

  private pump() {
    if (this.running) return
    const job = this.jobs.shift()
    if (!job) {
      for (const resolve of this.idleWaiters.splice(0)) resolve()
      return
    }
    this.running = job()
      .catch(this.onError)
      .finally(() => {
        this.running = undefined
        // A macrotask between jobs lets requests and sockets in.
        setTimeout(() => this.pump(), 0)
      })
  }
}
