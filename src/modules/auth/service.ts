// Login: rate-limited per address and per username, argon2id check, then a signed token.
import { RateLimiterMemory, RateLimiterRes } from 'rate-limiter-flexible'
import type { Config } from '../../config'
import type { Services } from '../../context'
import { AppError } from '../../lib/errors'
import { findCredentials } from '../users/service'
import type { LoginBody, TokenResponse } from './model'
import type { Tokens } from './tokens'

export class RateLimitedError extends AppError {
  constructor(readonly retryAfter: number) {
    super(429, 'too_many_attempts', `Too many login attempts; retry in ${retryAfter} s.`, {
      retry_after: retryAfter,
    })
    this.headers = { 'retry-after': String(retryAfter) }
  }
}

export class InvalidCredentialsError extends AppError {
  constructor() {
    super(401, 'invalid_credentials', 'Wrong username or password.')
  }
}

/**
 * Every attempt counts against its address (LOGIN_MAX_ATTEMPTS_PER_IP, whatever the username) and
 * against the pair of address and username (LOGIN_MAX_ATTEMPTS_PER_USER), per LOGIN_WINDOW_SECONDS;
 * a success clears the pair. Counting per username alone let anyone lock a user out from anywhere
 * (five wrong passwords for `admin`, and the right one got 429): keyed on the pair, as OWASP's
 * authentication guidance recommends, guessing stays throttled per address while the user, from
 * their own address, still gets in.
 */
export function createLoginLimiter(config: Readonly<Config>) {
  const duration = config.login.windowSeconds
  const byIp = new RateLimiterMemory({ points: config.login.maxPerIp, duration })
  const byIpAndUser = new RateLimiterMemory({ points: config.login.maxPerUser, duration })
  const pair = (address: string, username: string) => JSON.stringify([address, username])
  return {
    /** Counts an attempt; the seconds to wait when over either limit. */
    async attempt(address: string, username: string): Promise<number | undefined> {
      const results = await Promise.allSettled([
        byIp.consume(address),
        byIpAndUser.consume(pair(address, username)),
      ])
      let wait = 0
      for (const result of results) {
        if (result.status === 'fulfilled') continue
        if (!(result.reason instanceof RateLimiterRes)) throw result.reason
        wait = Math.max(wait, Math.ceil(result.reason.msBeforeNext / 1000))
      }
      return wait > 0 ? wait : undefined
    },
    succeeded: (address: string, username: string) => byIpAndUser.delete(pair(address, username)),
  }
}

export type LoginLimiter = ReturnType<typeof createLoginLimiter>

let dummyHash: Promise<string> | undefined

export async function login(
  services: Pick<Services, 'db'> & { tokens: Tokens; limiter: LoginLimiter },
  input: LoginBody,
  address: string,
): Promise<TokenResponse> {
  const wait = await services.limiter.attempt(address, input.username)
  if (wait !== undefined) throw new RateLimitedError(wait)
  const user = await findCredentials(services, input.username)
  // An unknown user costs the same hash check, so timing does not tell which usernames exist.
  dummyHash ??= Bun.password.hash(crypto.randomUUID(), { algorithm: 'argon2id' })
  const valid = await Bun.password.verify(input.password, user?.password_hash ?? (await dummyHash))
  if (!user || !valid) throw new InvalidCredentialsError()
  await services.limiter.succeeded(address, input.username)
  return {
    access_token: await services.tokens.sign(user),
    token_type: 'bearer',
    expires_in: services.tokens.lifetime,
  }
}
