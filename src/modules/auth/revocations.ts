// Revoked tokens, checked on every request from memory: the revoked token ids (logout) and, per user,
// the instant before which every token is revoked (password change, rename, deletion). Revocations are
// rows of token_revocations; each instance reads the new ones every POLL_MS (ids grow in commit order:
// writes are serialized), so a revocation made on one instance holds on all of them within that time.
import { asc, gt, lt } from 'drizzle-orm'
import type { Database, Tx } from '../../db'
import { tokenRevocations } from '../../db/schema'
import type { Logger } from '../../lib/logger'

const POLL_MS = 250
const PRUNE_MS = 10 * 60_000

/** What a revocation check needs from a token. */
export interface TokenIdentity {
  sub: string
  jti: string
  /** When the token was issued, in ms. */
  iat_ms: number
  /** Expiry, in seconds. */
  exp: number
}

export type Revocations = ReturnType<typeof createRevocations>

export function createRevocations(db: Database, log: Logger, tokenLifetimeS: number) {
  /** jti → expiry (ms): dropped from memory once the token would have expired anyway. */
  const tokens = new Map<string, number>()
  /** username → tokens issued at or before this instant (ms) are revoked; with its expiry. */
  const users = new Map<string, { notBefore: number; expires: number }>()
  const listeners: (() => void)[] = []
  let lastId = 0
  let timer: Timer | undefined
  let pruneTimer: Timer | undefined
  let reading: Promise<void> | undefined
  let failing = false

  const apply = (row: typeof tokenRevocations.$inferSelect) => {
    lastId = Math.max(lastId, row.id)
    if (row.jti) tokens.set(row.jti, row.expires_at)
    if (row.username && row.not_before !== null) {
      const known = users.get(row.username)
      if (!known || known.notBefore < row.not_before)
        users.set(row.username, { notBefore: row.not_before, expires: row.expires_at })
    }
  }

  /** Reads revocations newer than the last one seen; tells the listeners when there were any. */
  const read = async () => {
    try {
      const rows = await db.read
        .select()
        .from(tokenRevocations)
        .where(gt(tokenRevocations.id, lastId))
        .orderBy(asc(tokenRevocations.id))
      for (const row of rows) apply(row)
      if (failing) log.info('token revocations readable again')
      failing = false
      if (rows.length > 0) for (const listener of listeners) listener()
    } catch (error) {
      if (!failing) log.warn('cannot read token revocations; retrying', { error: String(error) })
      failing = true
    }
  }
  let next: Promise<void> | undefined
  /**
   * A read that starts after this call (so it sees every revocation committed before it): one in
   * flight may have started earlier, so a second one is queued behind it (and shared by callers).
   */
  const refresh = (): Promise<void> => {
    if (!reading) return (reading = read().finally(() => (reading = undefined)))
    return (next ??= reading.then(() => {
      next = undefined
      return refresh()
    }))
  }

  /** Forgets what can no longer matter: revocations of tokens that have expired anyway. */
  const prune = async () => {
    const now = Date.now()
    for (const [jti, expires] of tokens) if (expires < now) tokens.delete(jti)
    for (const [name, entry] of users) if (entry.expires < now) users.delete(name)
    await db
      .transaction((tx) => tx.delete(tokenRevocations).where(lt(tokenRevocations.expires_at, now)))
      .catch(() => undefined)
  }

  return {
    /** True when this (well-signed, unexpired) token was revoked. Two map lookups. */
    isRevoked(claims: TokenIdentity): boolean {
      if (tokens.has(claims.jti)) return true
      const user = users.get(claims.sub)
      return user !== undefined && claims.iat_ms <= user.notBefore
    },
    /** Revokes one token at once (logout). */
    async revokeToken(claims: TokenIdentity) {
      const now = Date.now()
      await db.transaction((tx) =>
        tx.insert(tokenRevocations).values({
          jti: claims.jti,
          expires_at: claims.exp * 1000,
          created_at: now,
        }),
      )
      await refresh()
    },
    /**
     * Inside the caller's transaction: revokes every token of `username` issued until now. Call
     * `refresh()` after the commit for it to hold here at once (other instances read it within POLL_MS).
     */
    async revokeUser(tx: Tx, username: string, now = Date.now()) {
      await tx.insert(tokenRevocations).values({
        username,
        not_before: now,
        expires_at: now + tokenLifetimeS * 1000,
        created_at: now,
      })
    },
    refresh,
    /** Called after new revocations arrive (to close the sockets that joined with a revoked token). */
    onRevoked(listener: () => void) {
      listeners.push(listener)
    },
    async start() {
      await refresh()
      timer = setInterval(refresh, POLL_MS)
      pruneTimer = setInterval(() => void prune(), PRUNE_MS)
      timer.unref()
      pruneTimer.unref()
    },
    async stop() {
      clearInterval(timer)
      clearInterval(pruneTimer)
      await reading
    },
    /** Held in memory now: revoked token ids and users. */
    size: () => ({ tokens: tokens.size, users: users.size }),
  }
}
