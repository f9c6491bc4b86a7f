// Requests in progress per client address, for HTTP_MAX_REQUESTS_PER_IP. Counting per address needs each
// request's address (Bun's requestIP) and a listener for clients that go away: a fifth of a small
// request's cost. So the count per address is kept only while at least `max` requests are in progress
// in all; below that no address can be at the limit, and only the set of requests is kept.

/** Aborted requests (clients gone mid-request, whatever the handler waits on) are let go this often. */
const SWEEP_MS = 1000

export class InProgress {
  private readonly requests = new Set<Request>()
  private readonly addresses = new WeakMap<Request, string>()
  /** Requests per address; only while counting (see the file's head). */
  private perAddress: Map<string, number> | undefined
  private sweptAt = 0

  constructor(
    private readonly max: number,
    private readonly addressOf: (request: Request) => string,
  ) {}

  /**
   * Counts a request in, or answers how many its address already has in progress when that is the
   * most allowed (the request is not counted then).
   */
  admit(request: Request): number | undefined {
    const now = Date.now()
    if (now - this.sweptAt >= SWEEP_MS) this.sweep(now)
    if (!this.perAddress && this.requests.size >= this.max) this.startCounting(now)
    if (this.perAddress) {
      const address = this.address(request)
      let count = this.perAddress.get(address) ?? 0
      if (count >= this.max) {
        // Before refusing, let go of the clients that left since the last sweep (which may end counting).
        this.sweep(now)
        count = this.perAddress?.get(address) ?? 0
        if (count >= this.max) return count
      }
      this.perAddress?.set(address, count + 1)
    }
    this.requests.add(request)
    return undefined
  }

  /** The request is over (answered or its client gone); a request not counted in is ignored. */
  release(request: Request) {
    if (!this.requests.delete(request)) return
    const perAddress = this.perAddress
    if (!perAddress) return
    const address = this.address(request)
    const left = (perAddress.get(address) ?? 1) - 1
    if (left > 0) perAddress.set(address, left)
    else perAddress.delete(address)
    // Half the limit below it before counting stops, so a load near it does not start and stop it.
    if (this.requests.size < this.max / 2) this.perAddress = undefined
  }

  private address(request: Request) {
    let address = this.addresses.get(request)
    if (address === undefined) this.addresses.set(request, (address = this.addressOf(request)))
    return address
  }

  private startCounting(now: number) {
    this.sweep(now)
    if (this.requests.size < this.max) return
    const perAddress = new Map<string, number>()
    for (const request of this.requests) {
      const address = this.address(request)
      perAddress.set(address, (perAddress.get(address) ?? 0) + 1)
    }
    this.perAddress = perAddress
  }

  private sweep(now: number) {
    this.sweptAt = now
    for (const request of this.requests) if (request.signal.aborted) this.release(request)
  }
}
