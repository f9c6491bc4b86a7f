// Group commit: requests that arrive together are written in one transaction, and each caller still
// gets its own result or its own error, exactly as if it had been written alone.

/**
 * While writers are concurrent (the lane's last group held more than one input), a group waits up to
 * this many more turns of the event loop for inputs still arriving, as long as each turn brings some:
 * a transaction has a fixed cost (BEGIN, COMMIT's WAL pages, the per-sensor lookups) that a bigger group
 * shares. A lone writer's input is written in its own turn, as before.
 */
const GATHER_TURNS = 4

interface Waiter<In, Out> {
  input: In
  resolve(out: Out): void
  reject(error: unknown): void
}

/** Inputs of one lane are grouped together; lanes are written side by side. */
interface Lane<In, Out> {
  pending: Waiter<In, Out>[]
  flushing: boolean
  /** Inputs in the last group written. */
  last: number
}

export class GroupCommit<In, Out> {
  private readonly lanes: Lane<In, Out>[]

  /**
   * `write` stores inputs in one transaction (all or none) and returns one result per input, in order.
   * A group it refuses is written again one input at a time, so a bad input spoils only itself.
   * `laneOf` spreads inputs over `lanes` groups written at the same time (PostgreSQL: readings of
   * different sensors, which do not wait for each other); one lane writes one group at a time.
   */
  constructor(
    private readonly write: (inputs: In[]) => Promise<Out[]>,
    private readonly maxGroup = 500,
    lanes = 1,
    private readonly laneOf: (input: In) => number = () => 0,
  ) {
    this.lanes = Array.from({ length: lanes }, () => ({ pending: [], flushing: false, last: 0 }))
  }

  add(input: In): Promise<Out> {
    const lane = this.lanes[Math.abs(this.laneOf(input)) % this.lanes.length]!
    return new Promise((resolve, reject) => {
      lane.pending.push({ input, resolve, reject })
      // After the I/O phase, so every request read in this turn of the event loop joins the group.
      if (!lane.flushing && lane.pending.length === 1) setImmediate(() => this.gather(lane, 0, 0))
    })
  }

  /** Flushes once the turns stop bringing inputs (or at once for a lone writer); see GATHER_TURNS. */
  private gather(lane: Lane<In, Out>, seen: number, turns: number) {
    const { length } = lane.pending
    if (lane.last > 1 && length > seen && length < this.maxGroup && turns < GATHER_TURNS)
      setImmediate(() => this.gather(lane, length, turns + 1))
    else void this.flush(lane)
  }

  private async flush(lane: Lane<In, Out>) {
    if (lane.flushing) return
    lane.flushing = true
    try {
      while (lane.pending.length > 0) {
        const group = lane.pending.splice(0, this.maxGroup)
        lane.last = group.length
        await this.writeGroup(group)
      }
    } finally {
      lane.flushing = false
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
