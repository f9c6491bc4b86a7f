// Access tokens: HS256 JWTs signed with JWT_SECRET by @elysiajs/jwt, carrying sub, role, channels, exp,
// and jti and iat_ms so that one token (logout) or a user's earlier tokens can be revoked.
import { jwt } from '@elysiajs/jwt'
import { t } from 'elysia'
import type { Config } from '../../config'
import { OneOf } from '../../lib/schemas'
import { ROLES, type Role } from './permissions'
import type { Revocations } from './revocations'

const Claims = t.Object({
  sub: t.String({ minLength: 1, maxLength: 64 }),
  role: OneOf(ROLES),
  channels: t.Array(t.String({ maxLength: 120 }), { maxItems: 1000 }),
  exp: t.Integer(),
  jti: t.String({ minLength: 1, maxLength: 64 }),
  iat_ms: t.Integer(),
})

export interface TokenClaims {
  sub: string
  role: Role
  channels: string[]
  /** Seconds since the epoch. */
  exp: number
  /** This token's id (revoked by logout). */
  jti: string
  /** Issued at, in ms (a password change revokes the user's tokens issued until then). */
  iat_ms: number
}

export interface TokenSubject {
  username: string
  role: Role
  channels: string[]
}

export type Tokens = ReturnType<typeof createTokens>

/** `revocations` (absent in tools that only sign) makes verify refuse revoked tokens. */
export function createTokens(config: Readonly<Config>, revocations?: Revocations) {
  const { jwt: signer } = jwt({
    name: 'jwt',
    secret: config.jwt.secret,
    alg: 'HS256',
    schema: Claims,
  }).decorator
  const lifetime = config.jwt.expiresIn
  return {
    lifetime,
    /** Signs a token for the user, valid for JWT_EXPIRES_IN seconds (or until `exp`). */
    sign: (user: TokenSubject, exp = Math.floor(Date.now() / 1000) + lifetime) =>
      signer.sign({
        sub: user.username,
        role: user.role,
        channels: user.channels,
        exp,
        jti: crypto
          .getRandomValues(new Uint8Array(16))
          .toBase64({ alphabet: 'base64url', omitPadding: true }),
        iat_ms: Date.now(),
      }),
    /** The claims of a well-formed, well-signed, unexpired, unrevoked HS256 token; undefined for anything else. */
    async verify(token: unknown): Promise<TokenClaims | undefined> {
      if (typeof token !== 'string' || token.length === 0 || token.length > 8192) return undefined
      const claims = (await signer.verify(token, { algorithms: ['HS256'] })) as TokenClaims | false
      if (!claims || revocations?.isRevoked(claims)) return undefined
      return claims
    },
  }
}
