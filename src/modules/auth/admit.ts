// WebSocket admission by token: /api/v1/ws/secure always, /api/v1/ws under AUTH_MODE=required.
import type { Config } from '../../config'
import { openAdmit, type Admit } from '../../realtime/routes'
import { CLOSE, parseChannels, type Admission } from '../../realtime/socket'
import { channelMatcher } from './permissions'
import type { Revocations } from './revocations'
import type { Tokens } from './tokens'

export type RefreshResult = { expiresAt: number } | { code: string; message: string }

/**
 * The token comes as `?token=` (browsers cannot set headers on a WebSocket). Missing, malformed,
 * badly signed or expired: close 4401; a channel the user may not join: 4403. The user id in the
 * stats is the token's username. The admission keeps the user's channel rules, and `refresh` swaps
 * in a newer token of the same user, which moves the connection's expiry.
 */
export function tokenAdmit(
  config: Readonly<Config>,
  tokens: Tokens,
  revocations?: Revocations,
): Admit {
  return async (query, secure) => {
    if (!secure && config.authMode === 'open') return openAdmit(query, secure)
    const claims = await tokens.verify(query.token)
    if (!claims)
      return {
        code: CLOSE.unauthorized,
        reason: query.token
          ? 'Token malformed, badly signed or expired; log in again'
          : 'A token is required: ?token=<access_token from POST /auth/login>',
      }
    const parsed = parseChannels(query.channel)
    if ('error' in parsed) return { code: CLOSE.badQuery, reason: parsed.error }
    let allowed = channelMatcher(claims.channels)
    let current = claims
    const denied = parsed.channels.find((channel) => !allowed(channel))
    if (denied)
      return {
        code: CLOSE.forbidden,
        reason: `Channel "${denied.slice(0, 40)}" is not allowed for user ${claims.sub.slice(0, 40)}`,
      }
    const admission: Admission = {
      channels: parsed.channels,
      userId: claims.sub,
      role: claims.role,
      allowed: (channel) => allowed(channel),
      tokenExpiresAt: claims.exp * 1000,
      revoked: revocations && (() => revocations.isRevoked(current)),
      async refresh(token, held): Promise<RefreshResult> {
        const fresh = await tokens.verify(token)
        if (!fresh)
          return {
            code: 'invalid_token',
            message:
              'That token is malformed, badly signed or expired; log in again for a new one.',
          }
        if (fresh.sub !== claims.sub)
          return {
            code: 'invalid_token',
            message: `That token belongs to another user; this connection is ${claims.sub}'s.`,
          }
        const next = channelMatcher(fresh.channels)
        const lost = held.find((channel) => !next(channel))
        if (lost)
          return {
            code: 'forbidden_channel',
            message: `The new token does not allow "${lost}"; unsubscribe from it first.`,
          }
        allowed = next
        current = fresh
        return { expiresAt: fresh.exp * 1000 }
      },
    }
    return admission
  }
}
