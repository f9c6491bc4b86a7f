// A circuit breaker in front of PostgreSQL: once a query fails because the database cannot be reached,
// every query fails at once (503) until a probe succeeds, instead of queueing on a dead pool.
import { DatabaseUnavailableError, isUnavailable } from './errors'

/** How often the probe runs while the database is down: recovery is noticed within this. */
const PROBE_INTERVAL_MS = 200
/** A probe that takes longer than this counts as failed (the database is not answering). */
const PROBE_TIMEOUT_MS = 1000

export class Availability {
  private downSince: number | undefined
  private probing = false
  private stopped = false

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

  /** Throws DatabaseUnavailableError while the database is known to be unreachable. */
  check() {
    if (this.downSince !== undefined) throw new DatabaseUnavailableError()
  }

  /** Looks at a failed query's error: one that says the database is unreachable opens the breaker. */
  readonly report = (error: unknown) => {
    if (this.downSince !== undefined || this.stopped || !isUnavailable(error)) return
    if (error instanceof DatabaseUnavailableError) return
    this.downSince = Date.now()
    this.notify.down(error)
    void this.probeUntilUp()
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
