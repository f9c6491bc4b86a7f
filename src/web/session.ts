// The page's token, shared by the pages' scripts: taken from `?token=<JWT>` (out of the address bar, kept
// for the tab's session in sessionStorage), or from a login through POST /auth/login; and who it belongs to
// (GET /api/v1/auth/me).
import { createApi, login, type Api } from '../client'

const KEY = 'vigia.token'

/** `?token=` (taken out of the address bar, so it is not bookmarked or shared), else this tab's earlier one. */
function initialToken(): string | undefined {
  const url = new URL(location.href)
  const given = url.searchParams.get('token')
  if (!given) return sessionStorage.getItem(KEY) ?? undefined
  sessionStorage.setItem(KEY, given)
  url.searchParams.delete('token')
  history.replaceState(null, '', url)
  return given
}

let current = initialToken()

/** The token in use, if any. */
export const sessionToken = () => current

/** Keeps a new token for the tab (or forgets it). */
export function setSessionToken(token: string | undefined) {
  current = token
  if (token) sessionStorage.setItem(KEY, token)
  else sessionStorage.removeItem(KEY)
}

/** A REST client that always sends the current token. */
export const sessionApi = (): Api => createApi(location.origin, { token: () => current })

export interface Me {
  username: string
  role: 'admin' | 'operator' | 'viewer'
}

/** Who the current token belongs to; undefined without a token or when it is no longer valid. */
export async function whoAmI(api: Api): Promise<Me | undefined> {
  if (!current) return undefined
  const { data } = await api.api.v1.auth.me.get()
  return data ? { username: data.username, role: data.role as Me['role'] } : undefined
}

/** Logs in and keeps the token; throws LoginError with the server's sentence when refused. */
export async function logIn(username: string, password: string) {
  const answer = await login(location.origin, username, password)
  setSessionToken(answer.access_token)
  return answer.access_token
}

/** Operators and admins may write (issue device keys); viewers only read. */
export const canWrite = (me: Me | undefined) => me?.role === 'admin' || me?.role === 'operator'
