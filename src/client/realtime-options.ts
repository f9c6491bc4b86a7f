// The realtime client's options, the events it reports and its pure helpers (backoff, token expiry, the
// WebSocket URL), apart from the connection's state machine in realtime.ts.
import type {
  ConnectionMessage,
  ErrorMessage,
  ServerEvent,
  ServerMessage,
  SnapshotMessage,
} from './types'

export interface BackoffOptions {
  /** Delay before the first retry, ms. */
  initialMs: number
  /** Longest delay, ms. */
  maxMs: number
  factor: number
  /** Share of each delay taken off at random (0..1), so clients dropped together do not return together. */
  jitter: number
}

export const DEFAULT_BACKOFF: BackoffOptions = {
  initialMs: 500,
  maxMs: 30_000,
  factor: 2,
  jitter: 0.5,
}

/** Delay before retry number `attempt` (from 0): exponential, capped at maxMs, less a random share. */
export function backoffDelay(
  attempt: number,
  options: BackoffOptions = DEFAULT_BACKOFF,
  random: () => number = Math.random,
): number {
  const capped = Math.min(options.maxMs, options.initialMs * options.factor ** attempt)
  return Math.round(capped * (1 - options.jitter * random()))
}

/** The `exp` claim of a JWT as ms since 1970, or undefined when the token has none. */
export function tokenExpiry(token: string): number | undefined {
  const payload = token.split('.')[1]
  if (!payload) return undefined
  try {
    const base64 = payload.replace(/-/g, '+').replace(/_/g, '/')
    const claims = JSON.parse(atob(base64.padEnd(Math.ceil(base64.length / 4) * 4, '=')))
    return typeof claims?.exp === 'number' ? claims.exp * 1000 : undefined
  } catch {
    return undefined
  }
}

/** ws(s)://host/api/v1/ws[/secure] from a WebSocket URL or an http(s) base such as http://localhost:8000. */
export function websocketUrl(url: string, secure = false): URL {
  const u = new URL(url)
  if (u.protocol === 'http:') u.protocol = 'ws:'
  else if (u.protocol === 'https:') u.protocol = 'wss:'
  if (!/\/api\/v1\/ws(\/secure)?\/?$/.test(u.pathname))
    u.pathname = `${u.pathname.replace(/\/$/, '')}/api/v1/ws${secure ? '/secure' : ''}`
  return u
}

export interface RealtimeOptions {
  /** ws://host/api/v1/ws (or /secure), or the server's http(s) base URL. */
  url: string
  /** Channels to join, sub-channels included (`sensors:5`). Default: general. */
  channels?: string[]
  userId?: string
  /** A fixed token. */
  token?: string
  /**
   * The app's source of tokens: called before connecting, ahead of the token's `exp` (the fresh one is
   * handed over with `{"action":"refresh"}`) and after the server closed with 4401.
   */
  getToken?: () => string | Promise<string>
  /** How long before `exp` to refresh (capped at half the token's remaining life). Default 60 s. */
  refreshAheadMs?: number
  /** Defaults to /api/v1/ws/secure when a token is given, else /api/v1/ws; a URL naming one wins. */
  secure?: boolean
  /** Resume from a seq the app kept (with the epoch it belonged to). */
  since?: number
  epoch?: string
  /**
   * Start every connection, the first and each reconnect, from a snapshot of the latest values
   * (`snapshot=latest`, handed to `on('snapshot')`) instead of resuming with `since`: what the app
   * holds is replaced by the snapshot, and the events that follow are exactly those after it.
   */
  snapshot?: boolean
  /** false: stay closed after a drop. Default: reconnect with DEFAULT_BACKOFF. */
  reconnect?: boolean | Partial<BackoffOptions>
  /** Drop events whose seq was already seen (default true). */
  dedupe?: boolean
  /** A WebSocket implementation other than the global one. */
  WebSocket?: typeof WebSocket
  random?: () => number
}

export type ClientState = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'closed'

export interface ConnectedInfo {
  message: ConnectionMessage
  /** True when this connection asked to resume (sent `since`). */
  resumed: boolean
  since?: number
  /** How many times this client has connected before. */
  reconnects: number
}

/** Events that were missed and cannot be replayed. */
export interface Gap {
  /** The last seq this client had seen. */
  since: number
  /** history_pruned: the server no longer keeps events that old; new_history: another event log (epoch). */
  reason: 'history_pruned' | 'new_history'
  epoch?: string
  serverEpoch?: string
  /** Oldest seq the server still had; events from `since + 1` to `oldestSeq - 1` are lost. */
  oldestSeq?: number
  lastSeq?: number
}

export interface Disconnect {
  code: number
  reason: string
  willReconnect: boolean
  delayMs?: number
  attempt?: number
}

export interface RealtimeEvents {
  state: ClientState
  connected: ConnectedInfo
  disconnected: Disconnect
  gap: Gap
  /** A `{"type":"error"}` message from the server (the connection stays open). */
  serverError: ErrorMessage
  tokenRefreshed: { token: string; reconnected: boolean }
  /** Every entity_event and system_event, after deduplication. */
  event: ServerEvent
  /** The latest values the connection starts from (with `snapshot: true`). */
  snapshot: SnapshotMessage
  /** Every message, as received. */
  message: ServerMessage
}

/** Thrown by connect() when the server refused for good (bad channel, no right, bad token). */
export class ConnectionRefusedError extends Error {
  override name = 'ConnectionRefusedError'
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(`WebSocket closed with ${code}${reason ? `: ${reason}` : ''}`)
  }
}
