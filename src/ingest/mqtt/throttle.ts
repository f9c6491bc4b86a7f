// Decides which rejected messages are worth a log line and a warning event: one per sensor per
// window, and a cap over all sensors so a flood from many topics cannot flood the event log.

export type Verdict =
  { report: true; suppressed: number } | { report: false; floodStarted: boolean }

export class ReportThrottle {
  private last = new Map<string, { at: number; suppressed: number }>()
  private recent: number[] = []
  private floodNoticeAt = -Infinity

  constructor(
    readonly windowMs = 60_000,
    readonly maxPerWindow = 10,
    private readonly maxKeys = 10_000,
  ) {}

  /** `suppressed` counts this key's rejections that went unreported since its previous report. */
  admit(key: string, now: number): Verdict {
    const entry = this.last.get(key)
    if (entry && now - entry.at < this.windowMs) {
      entry.suppressed++
      return { report: false, floodStarted: false }
    }
    this.recent = this.recent.filter((at) => now - at < this.windowMs)
    if (this.recent.length >= this.maxPerWindow) {
      const floodStarted = now - this.floodNoticeAt >= this.windowMs
      if (floodStarted) this.floodNoticeAt = now
      if (entry) entry.suppressed++
      return { report: false, floodStarted }
    }
    this.recent.push(now)
    const suppressed = entry?.suppressed ?? 0
    this.last.delete(key)
    this.last.set(key, { at: now, suppressed: 0 })
    if (this.last.size > this.maxKeys) this.prune(now)
    return { report: true, suppressed }
  }

  /** Entries are kept in report order, so the stale ones are at the front. */
  private prune(now: number) {
    for (const [key, { at }] of this.last) {
      if (now - at < this.windowMs && this.last.size <= this.maxKeys) break
      this.last.delete(key)
    }
  }
}
