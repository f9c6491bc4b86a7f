// The Vigía client library, for Bun and browsers: realtime events over WebSocket and typed REST calls.
import { createApi } from './rest'
import { RealtimeClient, type RealtimeOptions } from './realtime'

export * from './types'
export * from './realtime'
export * from './rest'

/** A realtime client and a REST client for the same server, sharing its token. */
export function createClient(options: RealtimeOptions) {
  const realtime = new RealtimeClient(options)
  const api = createApi(options.url, { token: () => realtime.currentToken })
  return { realtime, api }
}
