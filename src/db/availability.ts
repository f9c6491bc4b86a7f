// A circuit breaker in front of PostgreSQL: once a query fails because the database cannot be reached
// (and a probe confirms it), every query fails at once (503) until a probe succeeds, instead of
// queueing on a dead pool.
import { DatabaseUnavailableError, isUnavailable } from './errors'

/** How often the probe runs while the database is down: recovery is noticed within this. */
const PROBE_INTERVAL_MS = 200
/** A probe that takes longer than this counts as failed (the database is not answering). */
const PROBE_TIMEOUT_MS = 1000

export class Availability {
  private downSince: number | undefined
  private confirming = false
  private probing = false
  private stopped = false
  /** What to do the moment the breaker opens (see onDown). */
  private readonly waiting = new Set<() => void>()

  /** `probe` runs one cheap query (select 1) past the breaker; `notify` hears it open and close. */
  constructor(
    private readonly probe: () => Promise<void>,
    private readonly notify: {
      down(error: unknown): void
      up(downForMs: number): void
    } = { down() {}, up() {} },
  ) {}

  get up() {
    return this.downSince === undefined
  }

  /**
   * Calls `fn` once if the breaker opens before the returned function is called (which forgets it): a
   * transaction still waiting for a connection is refused then, not when its connect attempt times out.
   */
  onDown(fn: () => void): () => void {
    this.waiting.add(fn)
    return () => this.waiting.delete(fn)
  }

  /** Throws DatabaseUnavailableError while the database is known to be unreachable. */
  check() {
    if (this.downSince !== undefined) throw new DatabaseUnavailableError()
  }

  /**
   * Looks at a failed query's error: one that says the database is unreachable opens the breaker,
   * once a probe confirms it. One connection that died (closed by the server, or a leftover of a
   * restart) is not an outage; a database that is down refuses the probe at once.
   */
  readonly report = (error: unknown) => {
    if (this.downSince !== undefined || this.confirming || this.stopped) return
    if (!isUnavailable(error) || error instanceof DatabaseUnavailableError) return
    this.confirming = true
    const noticed = Date.now()
    void this.probeOnce()
      .then((answered) => {
        if (answered || this.downSince !== undefined || this.stopped) return
        this.downSince = noticed
        this.notify.down(error)
        const waiting = [...this.waiting]
        this.waiting.clear()
        for (const fn of waiting) fn()
        void this.probeUntilUp()
      })
      .finally(() => (this.confirming = false))
  }

  stop() {
    this.stopped = true
  }

  private async probeUntilUp() {
    if (this.probing) return
    this.probing = true
    try {
      while (this.downSince !== undefined && !this.stopped) {
        await Bun.sleep(PROBE_INTERVAL_MS)
        if (await this.probeOnce()) {
          const downFor = Date.now() - this.downSince
          this.downSince = undefined
          this.notify.up(downFor)
        }
      }
    } finally {
      this.probing = false
    }
  }

  private async probeOnce(): Promise<boolean> {
    let timer: Timer | undefined
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), PROBE_TIMEOUT_MS)
    })
    try {
      return await Promise.race([
        this.probe().then(
          () => true,
          () => false,
        ),
        timeout,
      ])
    } finally {
      clearTimeout(timer)
    }
  }
}
