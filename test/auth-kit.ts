// Test kit for auth: a server with a known admin, logins, hand-made tokens and a logger that keeps lines.
import type { Logger } from '../src/lib/logger'
import { createTokens, type TokenSubject } from '../src/modules/auth/tokens'
import { startTestServer, type TestServer } from './helpers'

export const ADMIN = { username: 'admin', password: 'admin-password-for-tests' }

export function startAuthServer(env: Record<string, string> = {}, log?: Logger) {
  return startTestServer({ ADMIN_PASSWORD: ADMIN.password, ...env }, { log })
}

export const bearer = (token: string) => ({ authorization: `Bearer ${token}` })

export async function login(server: TestServer, username: string, password: string) {
  const res = await server.api('POST', '/auth/login', { username, password })
  if (res.status !== 200)
    throw new Error(`login ${username}: ${res.status} ${JSON.stringify(res.body)}`)
  return res.body.access_token as string
}

export const adminToken = (server: TestServer) => login(server, ADMIN.username, ADMIN.password)

/** Creates a user through the API (as admin) and returns a token of theirs. */
export async function userToken(
  server: TestServer,
  user: { username: string; role: string; channels?: string[] },
) {
  const password = `${user.username}-password`
  const res = await server.api(
    'POST',
    '/api/v1/users',
    { ...user, password },
    bearer(await adminToken(server)),
  )
  if (res.status !== 201) throw new Error(`create ${user.username}: ${JSON.stringify(res.body)}`)
  return login(server, user.username, password)
}

/** A token signed with the server's secret (or another one), expiring at `exp` (seconds). */
export function mintToken(
  server: TestServer,
  subject: TokenSubject,
  exp?: number,
  secret = server.config.jwt.secret,
) {
  return createTokens({ ...server.config, jwt: { ...server.config.jwt, secret } }).sign(
    subject,
    exp,
  )
}

export const claimsOf = (token: string) =>
  JSON.parse(Buffer.from(token.split('.')[1]!, 'base64url').toString())

/** A logger that keeps every line it is given, at every level. */
export function capturingLogger() {
  const lines: string[] = []
  const keep = (level: string) => (message: string, fields?: Record<string, unknown>) => {
    lines.push(`${level} ${message}${fields ? ` ${JSON.stringify(fields)}` : ''}`)
  }
  const log: Logger = {
    debug: keep('debug'),
    info: keep('info'),
    warn: keep('warn'),
    error: keep('error'),
  }
  return { log, lines, text: () => lines.join('\n') }
}
