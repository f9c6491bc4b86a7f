// Group commit: requests that arrive together are written in one transaction, and each caller still
// gets its own result or its own error, exactly as if it had been written alone.

interface Waiter<In, Out> {
  input: In
  resolve(out: Out): void
  reject(error: unknown): void
}

export class GroupCommit<In, Out> {
  private pending: Waiter<In, Out>[] = []
  private flushing = false

  /**
   * `write` stores inputs in one transaction (all or none) and returns one result per input, in order.
   * A group it refuses is written again one input at a time, so a bad input spoils only itself.
   */
  constructor(
    private readonly write: (inputs: In[]) => Promise<Out[]>,
    private readonly maxGroup = 500,
  ) {}

  add(input: In): Promise<Out> {
    return new Promise((resolve, reject) => {
      this.pending.push({ input, resolve, reject })
      // After the I/O phase, so every request read in this turn of the event loop joins the group.
      if (!this.flushing && this.pending.length === 1) setImmediate(() => void this.flush())
    })
  }

  private async flush() {
    if (this.flushing) return
    this.flushing = true
    try {
      while (this.pending.length > 0) {
        const group = this.pending.splice(0, this.maxGroup)
        await this.writeGroup(group)
      }
    } finally {
      this.flushing = false
    }
  }

  private async writeGroup(group: Waiter<In, Out>[]) {
    try {
      const out = await this.write(group.map((w) => w.input))
      group.forEach((w, i) => w.resolve(out[i]!))
    } catch (error) {
      if (group.length === 1) return group[0]!.reject(error)
      for (const w of group) await this.writeGroup([w])
    }
  }
}
