// Type-safe REST calls through Eden Treaty, typed by the server's own routes (`App`), and login per CONTRACT §3.
import { treaty } from '@elysiajs/eden'
import type { App } from '../app'

export interface ApiOptions {
  /** Sent as `Authorization: Bearer …`; a function is asked before every request. */
  token?: string | (() => string | undefined | Promise<string | undefined>)
  fetch?: typeof fetch
}

/** http(s)://host from the server's base URL or any of its WebSocket URLs. */
export function httpBase(url: string): string {
  const u = new URL(url)
  if (u.protocol === 'ws:') u.protocol = 'http:'
  else if (u.protocol === 'wss:') u.protocol = 'https:'
  const path = u.pathname.replace(/\/api\/v1\/ws(\/secure)?\/?$/, '').replace(/\/$/, '')
  return `${u.protocol}//${u.host}${path}`
}

/** `api.api.v1.sensors.get({ query: { limit: 10 } })`: paths, bodies and answers typed from the server. */
export function createApi(baseUrl: string, options: ApiOptions = {}) {
  return treaty<App>(httpBase(baseUrl), {
    // Keep date-time fields as the ISO strings the types promise.
    parseDate: false,
    fetcher: options.fetch,
    headers: async () => {
      const token = typeof options.token === 'function' ? await options.token() : options.token
      return token ? { authorization: `Bearer ${token}` } : undefined
    },
  })
}

export type Api = ReturnType<typeof createApi>

export interface LoginAnswer {
  access_token: string
  token_type: 'bearer'
  expires_in: number
}

export class LoginError extends Error {
  override name = 'LoginError'
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message)
  }
}

/** POST /auth/login {"username","password"} → the bearer token (CONTRACT §3). */
export async function login(
  baseUrl: string,
  username: string,
  password: string,
  fetcher: typeof fetch = fetch,
): Promise<LoginAnswer> {
  const res = await fetcher(`${httpBase(baseUrl)}/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username, password }),
  })
  const body = (await res.json().catch(() => undefined)) as
    LoginAnswer | { message?: string } | undefined
  if (!res.ok || !body || !('access_token' in body))
    throw new LoginError(
      res.status,
      (body && 'message' in body && body.message) || `login failed with ${res.status}`,
    )
  return body
}

/** A `getToken` for RealtimeClient that logs in again whenever a fresh token is needed. */
export function loginTokens(baseUrl: string, username: string, password: string) {
  return async () => (await login(baseUrl, username, password)).access_token
}
