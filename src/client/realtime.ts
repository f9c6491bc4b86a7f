// The realtime half of the client library: one WebSocket that reconnects with exponential backoff and jitter,
// resumes with `since` (reporting any gap it could not recover), resubscribes its channels and refreshes its token.
import type {
  ConnectionMessage,
  EntityEvent,
  EntityEventTypes,
  EntityType,
  ErrorMessage,
  ServerEvent,
  ServerMessage,
  SystemEvent,
} from './types'
import {
  backoffDelay,
  ConnectionRefusedError,
  DEFAULT_BACKOFF,
  tokenExpiry,
  websocketUrl,
  type BackoffOptions,
  type ClientState,
  type ConnectedInfo,
  type RealtimeEvents,
  type RealtimeOptions,
} from './realtime-options'

export * from './realtime-options'

interface PendingAction {
  action: 'subscribe' | 'unsubscribe'
  channel: string
  sent: boolean
  resolve: () => void
  reject: (error: Error) => void
}

type Handler<T> = (value: T) => void
type EntityHandler = { entity: EntityType; event?: string; fn: Handler<EntityEvent> }

const SUBSCRIPTION_ERRORS = new Set(['unknown_channel', 'forbidden_channel', 'not_subscribed'])
/** Close codes after which the same request can only fail again. */
const FATAL = new Set([4400, 4403])
const REFRESH_CLOSE = 4000

export class RealtimeClient {
  readonly channels: Set<string>
  state: ClientState = 'idle'
  /** Highest seq seen: the `since` of the next connection. */
  lastSeq: number | undefined
  /** The server's event history id, sent back with `since`. */
  epoch: string | undefined
  /** The last `connection` greeting. */
  greeting: ConnectionMessage | undefined
  readonly stats = { events: 0, duplicates: 0, reconnects: 0, gaps: 0 }

  private readonly options: RealtimeOptions
  private readonly endpoint: URL
  private readonly backoff: BackoffOptions | undefined
  private readonly WS: typeof WebSocket
  private ws: WebSocket | undefined
  private token: string | undefined
  private wanted = false
  private connects = 0
  private attempt = 0
  private sentSince: number | undefined
  private reconnectNow = false
  private refreshPending = false
  private retryTimer: ReturnType<typeof setTimeout> | undefined
  private refreshTimer: ReturnType<typeof setTimeout> | undefined
  private pending: PendingAction[] = []
  private pongs: ((ok: boolean) => void)[] = []
  private ready: { resolve: (m: ConnectionMessage) => void; reject: (e: Error) => void }[] = []
  private listeners = new Map<keyof RealtimeEvents, Set<Handler<never>>>()
  private entityHandlers: EntityHandler[] = []
  private systemHandlers = new Set<Handler<SystemEvent>>()

  constructor(options: RealtimeOptions) {
    this.options = options
    this.channels = new Set(options.channels?.length ? options.channels : ['general'])
    this.token = options.token
    const secure = options.secure ?? Boolean(options.token || options.getToken)
    this.endpoint = websocketUrl(options.url, secure)
    this.backoff =
      options.reconnect === false
        ? undefined
        : { ...DEFAULT_BACKOFF, ...(options.reconnect === true ? {} : options.reconnect) }
    this.lastSeq = options.since
    this.epoch = options.epoch
    const WS = options.WebSocket ?? globalThis.WebSocket
    if (!WS) throw new Error('No WebSocket implementation: pass options.WebSocket')
    this.WS = WS
  }

  /** The token the connection uses now (also what REST calls should send). */
  get currentToken(): string | undefined {
    return this.token
  }

  /** Opens the connection; resolves with the server's greeting (after retries, when reconnect is on). */
  connect(): Promise<ConnectionMessage> {
    if (this.state === 'open' && this.greeting) return Promise.resolve(this.greeting)
    const ready = new Promise<ConnectionMessage>((resolve, reject) =>
      this.ready.push({ resolve, reject }),
    )
    if (!this.wanted) {
      this.wanted = true
      this.attempt = 0
      this.setState('connecting')
      void this.open()
    }
    return ready
  }

  /** Closes for good (no reconnect). Resolves once the socket is closed. */
  close(code = 1000, reason = 'client closed'): Promise<void> {
    this.wanted = false
    clearTimeout(this.retryTimer)
    clearTimeout(this.refreshTimer)
    const ws = this.ws
    this.failReady(new Error('closed by the client'))
    if (!ws || ws.readyState === 3) {
      this.ws = undefined
      this.setState('closed')
      return Promise.resolve()
    }
    return new Promise((resolve) => {
      ws.addEventListener('close', () => resolve(), { once: true })
      ws.close(code, reason)
    })
  }

  /** Joins a channel now (acknowledged by the server) and on every reconnect. */
  subscribe(channel: string): Promise<void> {
    this.channels.add(channel)
    return this.request('subscribe', channel)
  }

  /** Leaves a channel now and on every reconnect. */
  unsubscribe(channel: string): Promise<void> {
    this.channels.delete(channel)
    return this.request('unsubscribe', channel)
  }

  /** Round trip of `{"action":"ping"}`, ms. */
  ping(): Promise<number> {
    const ws = this.ws
    if (!ws || this.state !== 'open') return Promise.reject(new Error('not connected'))
    const start = performance.now()
    return new Promise((resolve, reject) => {
      this.pongs.push((ok) =>
        ok ? resolve(performance.now() - start) : reject(new Error('connection closed')),
      )
      ws.send(JSON.stringify({ action: 'ping' }))
    })
  }

  /**
   * Gets a fresh token from `getToken` and hands it to the open connection. A server that does not take
   * `{"action":"refresh"}` answers with an error; then the client reconnects with the new token and `since`.
   */
  async refreshToken(): Promise<void> {
    const getToken = this.options.getToken
    if (!getToken) return
    clearTimeout(this.refreshTimer)
    let token: string
    try {
      token = await getToken()
    } catch {
      this.refreshTimer = setTimeout(() => void this.refreshToken(), 5000)
      return
    }
    this.token = token
    const ws = this.ws
    if (ws && ws.readyState === 1 && this.state === 'open') {
      this.refreshPending = true
      ws.send(JSON.stringify({ action: 'refresh', token }))
      // The pong comes after the server has dealt with the refresh: no error before it means accepted.
      this.pongs.push((ok) => {
        if (!ok || !this.refreshPending) return
        this.refreshPending = false
        this.emit('tokenRefreshed', { token, reconnected: false })
      })
      ws.send(JSON.stringify({ action: 'ping' }))
    }
    this.scheduleRefresh()
  }

  on<K extends keyof RealtimeEvents>(type: K, handler: Handler<RealtimeEvents[K]>): () => void {
    let set = this.listeners.get(type)
    if (!set) this.listeners.set(type, (set = new Set()))
    set.add(handler as Handler<never>)
    return () => set.delete(handler as Handler<never>)
  }

  /** Handles entity events of one entity type, optionally of one event type; `data` is typed. */
  onEntity<E extends EntityType>(entity: E, handler: Handler<EntityEvent<E>>): () => void
  onEntity<E extends EntityType, V extends EntityEventTypes[E]>(
    entity: E,
    event: V,
    handler: Handler<EntityEvent<E, V>>,
  ): () => void
  onEntity(
    entity: EntityType,
    eventOrHandler: string | Handler<EntityEvent>,
    maybeHandler?: Handler<EntityEvent>,
  ): () => void {
    const entry: EntityHandler =
      typeof eventOrHandler === 'function'
        ? { entity, fn: eventOrHandler }
        : { entity, event: eventOrHandler, fn: maybeHandler! }
    this.entityHandlers.push(entry)
    return () => {
      this.entityHandlers = this.entityHandlers.filter((h) => h !== entry)
    }
  }

  onSystem(handler: Handler<SystemEvent>): () => void {
    this.systemHandlers.add(handler)
    return () => this.systemHandlers.delete(handler)
  }

  private emit<K extends keyof RealtimeEvents>(type: K, value: RealtimeEvents[K]) {
    for (const handler of this.listeners.get(type) ?? []) call(handler as Handler<unknown>, value)
  }

  private setState(state: ClientState) {
    if (this.state === state) return
    this.state = state
    this.emit('state', state)
  }

  private async tokenForConnect(): Promise<string | undefined> {
    const getToken = this.options.getToken
    if (!getToken) return this.token
    const exp = this.token ? tokenExpiry(this.token) : undefined
    if (!this.token || (exp !== undefined && exp - Date.now() < 1000)) this.token = await getToken()
    return this.token
  }

  private url(token: string | undefined): string {
    const u = new URL(this.endpoint)
    if (this.channels.size > 0) u.searchParams.set('channel', [...this.channels].join(','))
    if (this.options.userId) u.searchParams.set('user_id', this.options.userId)
    if (token) u.searchParams.set('token', token)
    if (this.options.snapshot) {
      // A snapshot replaces what was missed, so there is nothing to resume.
      this.sentSince = undefined
      u.searchParams.set('snapshot', 'latest')
      return u.toString()
    }
    this.sentSince = this.lastSeq
    if (this.lastSeq !== undefined) {
      u.searchParams.set('since', String(this.lastSeq))
      if (this.epoch) u.searchParams.set('epoch', this.epoch)
    }
    return u.toString()
  }

  private async open() {
    let token: string | undefined
    try {
      token = await this.tokenForConnect()
    } catch {
      return this.scheduleReconnect(0, 'getToken failed')
    }
    if (!this.wanted) return
    let ws: WebSocket
    try {
      ws = new this.WS(this.url(token))
    } catch (error) {
      this.wanted = false
      this.setState('closed')
      return this.failReady(error instanceof Error ? error : new Error(String(error)))
    }
    this.ws = ws
    ws.addEventListener('message', (e) => this.receive(ws, e.data))
    ws.addEventListener('close', (e) => this.closed(ws, e.code, e.reason))
  }

  private receive(ws: WebSocket, data: unknown) {
    if (ws !== this.ws) return
    let msg: ServerMessage
    try {
      msg = JSON.parse(String(data))
    } catch {
      return
    }
    this.emit('message', msg)
    switch (msg.type) {
      case 'connection':
        if (msg.status === 'connected') return this.connected(msg)
        return this.acknowledged(msg)
      case 'entity_event':
      case 'system_event':
        return this.event(msg)
      case 'pong':
        return this.pongs.shift()?.(true)
      case 'snapshot':
        // The events that follow are those after it.
        this.lastSeq = msg.seq
        return this.emit('snapshot', msg)
      case 'error':
        return this.serverError(msg)
    }
  }

  private connected(msg: ConnectionMessage) {
    const resumed = this.sentSince !== undefined
    const newHistory = Boolean(msg.epoch && this.epoch && msg.epoch !== this.epoch)
    if (resumed && msg.recovered === false) {
      this.stats.gaps += 1
      this.emit('gap', {
        since: this.sentSince!,
        reason: newHistory ? 'new_history' : 'history_pruned',
        epoch: this.epoch,
        serverEpoch: msg.epoch,
        oldestSeq: msg.oldest_seq,
        lastSeq: msg.last_seq,
      })
    }
    // A fresh start or another history: count from where the server stands now.
    if ((!resumed || newHistory) && msg.last_seq !== undefined) this.lastSeq = msg.last_seq
    if (msg.epoch) this.epoch = msg.epoch
    this.greeting = msg
    this.attempt = 0
    if (this.connects > 0) this.stats.reconnects += 1
    const info: ConnectedInfo = {
      message: msg,
      resumed,
      since: this.sentSince,
      reconnects: this.connects,
    }
    this.connects += 1
    // Actions of a lost socket: settled by this handshake's channels, or sent again.
    const joined = new Set(msg.channels ?? [])
    for (const p of [...this.pending]) {
      if (joined.has(p.channel) === (p.action === 'subscribe')) this.settle(p)
      else if (!p.sent) this.send(p)
    }
    this.setState('open')
    this.emit('connected', info)
    for (const r of this.ready.splice(0)) r.resolve(msg)
    if (this.options.getToken && this.token && this.refreshPending) {
      this.refreshPending = false
      this.emit('tokenRefreshed', { token: this.token, reconnected: true })
    }
    this.scheduleRefresh()
  }

  private acknowledged(msg: ConnectionMessage) {
    const p = this.pending.find(
      (q) => q.sent && q.channel === msg.channel && `${q.action}d` === msg.status,
    )
    if (p) this.settle(p)
  }

  private event(msg: ServerEvent) {
    if (this.options.dedupe !== false && this.lastSeq !== undefined && msg.seq <= this.lastSeq) {
      this.stats.duplicates += 1
      return
    }
    if (this.lastSeq === undefined || msg.seq > this.lastSeq) this.lastSeq = msg.seq
    this.stats.events += 1
    this.emit('event', msg)
    if (msg.type === 'system_event') {
      for (const fn of this.systemHandlers) call(fn, msg)
      return
    }
    for (const h of this.entityHandlers)
      if (h.entity === msg.entity_type && (h.event === undefined || h.event === msg.event_type))
        call(h.fn, msg)
  }

  private serverError(msg: ErrorMessage) {
    this.emit('serverError', msg)
    if (SUBSCRIPTION_ERRORS.has(msg.code)) {
      const p = this.pending.find((q) => q.sent)
      if (!p) return
      if (msg.code === 'not_subscribed') return this.settle(p)
      if (p.action === 'subscribe') this.channels.delete(p.channel)
      this.pending.splice(this.pending.indexOf(p), 1)
      return p.reject(new Error(msg.message))
    }
    if (this.refreshPending && this.ws) {
      // The refresh was not taken: start over with the new token, resuming with since.
      this.reconnectNow = true
      this.ws.close(REFRESH_CLOSE, 'token refresh')
    }
  }

  private closed(ws: WebSocket, code: number, reason: string) {
    if (ws !== this.ws) return
    this.ws = undefined
    clearTimeout(this.refreshTimer)
    for (const p of this.pending) p.sent = false
    for (const pong of this.pongs.splice(0)) pong(false)
    if (!this.wanted) {
      this.setState('closed')
      this.emit('disconnected', { code, reason, willReconnect: false })
      return
    }
    if (code === 4401) {
      this.token = undefined
      if (!this.options.getToken) return this.giveUp(code, reason)
    }
    if (FATAL.has(code) || !this.backoff) return this.giveUp(code, reason)
    this.scheduleReconnect(code, reason)
  }

  private scheduleReconnect(code: number, reason: string) {
    const backoff = this.backoff
    if (!backoff) return this.giveUp(code, reason)
    const delayMs = this.reconnectNow
      ? 0
      : backoffDelay(this.attempt, backoff, this.options.random ?? Math.random)
    this.reconnectNow = false
    this.attempt += 1
    this.setState('reconnecting')
    this.emit('disconnected', { code, reason, willReconnect: true, delayMs, attempt: this.attempt })
    clearTimeout(this.retryTimer)
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined
      if (this.wanted) void this.open()
    }, delayMs)
  }

  private giveUp(code: number, reason: string) {
    this.wanted = false
    this.setState('closed')
    this.emit('disconnected', { code, reason, willReconnect: false })
    this.failReady(new ConnectionRefusedError(code, reason))
    for (const p of this.pending.splice(0)) p.reject(new ConnectionRefusedError(code, reason))
  }

  private failReady(error: Error) {
    for (const r of this.ready.splice(0)) r.reject(error)
  }

  private request(action: PendingAction['action'], channel: string): Promise<void> {
    // Not connected: the channel set goes into the next handshake.
    if (!this.wanted) return Promise.resolve()
    return new Promise((resolve, reject) => {
      const p: PendingAction = { action, channel, sent: false, resolve, reject }
      this.pending.push(p)
      if (this.state === 'open') this.send(p)
    })
  }

  private send(p: PendingAction) {
    const ws = this.ws
    if (!ws || ws.readyState !== 1) return
    p.sent = true
    ws.send(JSON.stringify({ action: p.action, channel: p.channel }))
  }

  private settle(p: PendingAction) {
    const index = this.pending.indexOf(p)
    if (index >= 0) this.pending.splice(index, 1)
    p.resolve()
  }

  private scheduleRefresh() {
    clearTimeout(this.refreshTimer)
    if (!this.options.getToken || !this.token) return
    const exp = tokenExpiry(this.token)
    const now = Date.now()
    // An already expired token is replaced on the reconnect that the server's 4401 brings.
    if (exp === undefined || exp - now <= 1000) return
    const lead = Math.min(this.options.refreshAheadMs ?? 60_000, (exp - now) / 2)
    this.refreshTimer = setTimeout(() => void this.refreshToken(), Math.max(0, exp - lead - now))
  }
}

/** A throwing handler must not keep the others from their event. */
function call<T>(fn: Handler<T>, value: T) {
  try {
    fn(value)
  } catch (error) {
    console.error('Vigía client: an event handler threw', error)
  }
}
