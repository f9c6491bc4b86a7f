// Login at /auth/login (as in the original) and /api/v1/auth/login, logout (revokes the token at
// once), and who the current token is.
import { Elysia, t } from 'elysia'
import type { AppContext } from '../../context'
import { clientAddress } from '../../lib/client-address'
import { iso } from '../../lib/time'
import { errorResponse, errors } from '../../lib/schemas'
import type { Guard } from './guard'
import { LoginBody, Me, TokenResponse } from './model'
import { createLoginLimiter, login } from './service'
import type { TokenClaims, Tokens } from './tokens'

export const authModule = (ctx: AppContext, tokens: Tokens, guard: Guard) => {
  const logoutRoute = {
    auth: 'token' as const,
    response: { 204: t.Void(), ...errors },
    detail: {
      summary: 'Log out: revoke the bearer token',
      description:
        'The token is refused from now on (401) on every instance, and WebSockets that joined with it close with 4401.',
    },
  }
  const revoke = (user: TokenClaims) => ctx.revocations.revokeToken(user)
  const deps = { db: ctx.db, tokens, limiter: createLoginLimiter(ctx.config) }
  const loginRoute = {
    body: LoginBody,
    response: {
      200: TokenResponse,
      ...errors,
      401: errorResponse(401, {
        description: 'Wrong username or password',
        error: 'invalid_credentials',
        message: 'Wrong username or password.',
      }),
      429: errorResponse(429, {
        description:
          'Too many login attempts from this address, or for this user from it; retry after Retry-After seconds',
        error: 'too_many_attempts',
        message: 'Too many login attempts; retry in 42 s.',
      }),
    },
    detail: {
      summary: 'Log in: a bearer token for REST and /api/v1/ws/secure',
      description:
        'JSON {"username","password"} or the OAuth2 password-flow form (grant_type=password). Wrong credentials: 401. Too many attempts from one address or for one user: 429 with Retry-After.',
    },
  }
  const address = (
    request: Request,
    server: { requestIP(r: Request): { address: string } | null } | null,
  ) =>
    clientAddress(
      ctx.config.trustProxy,
      request.headers.get('x-forwarded-for'),
      server?.requestIP(request)?.address,
    )
  return new Elysia({ name: 'auth', detail: { tags: ['auth'] } })
    .use(guard.macro)
    .post(
      '/auth/login',
      ({ body, request, server }) => login(deps, body, address(request, server)),
      loginRoute,
    )
    .post(
      '/api/v1/auth/login',
      ({ body, request, server }) => login(deps, body, address(request, server)),
      loginRoute,
    )
    .post(
      '/auth/logout',
      async ({ user, status }) => status(204, void (await revoke(user))),
      logoutRoute,
    )
    .post(
      '/api/v1/auth/logout',
      async ({ user, status }) => status(204, void (await revoke(user))),
      logoutRoute,
    )
    .get(
      '/api/v1/auth/me',
      ({ user }) => ({
        username: user.sub,
        role: user.role,
        channels: user.channels,
        expires_at: iso(user.exp * 1000),
      }),
      {
        auth: 'token',
        response: { 200: Me, ...errors },
        detail: {
          summary: 'The user and rights of the bearer token',
          description:
            'Who the token belongs to, its role, the WebSocket channels it may join and when it expires.',
        },
      },
    )
}
