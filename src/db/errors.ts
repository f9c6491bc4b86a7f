// Reads driver errors (SQLite, postgres.js, network) through drizzle's wrappers: which ones mean
// "the database cannot be reached", which ones mean "the change conflicts with existing data".

/** The first SQLSTATE / SQLITE_* / errno code found on the error or its causes. */
export function dbErrorCode(error: unknown): string | undefined {
  for (let e = error, depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    const code = (e as { code?: unknown }).code
    if (typeof code === 'string') return code
    e = (e as { cause?: unknown }).cause
  }
  return undefined
}

/** Thrown without asking the database while it is known to be unreachable (see availability.ts). */
export class DatabaseUnavailableError extends Error {
  readonly code = 'DATABASE_UNAVAILABLE'
  constructor() {
    super('the database is unreachable; waiting for it to answer again')
  }
}

/** postgres.js's own codes for a connection that could not be made or was lost, and ours. */
const CONNECTION_CODES = new Set([
  'DATABASE_UNAVAILABLE',
  'CONNECTION_CLOSED',
  'CONNECTION_ENDED',
  'CONNECTION_DESTROYED',
  'CONNECT_TIMEOUT',
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'ENOTFOUND',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EAI_AGAIN',
  'SQLITE_BUSY',
])

/**
 * True when the database is down, restarting or refusing connections: a retry later can succeed.
 * SQLSTATE class 08 is a connection exception; 57P01-57P03 an administrator or crash shutdown or a
 * server still starting; 53300 too many connections.
 */
export function isUnavailable(error: unknown): boolean {
  const code = dbErrorCode(error)
  if (!code) return false
  return (
    CONNECTION_CODES.has(code) ||
    code.startsWith('08') ||
    code === '57P01' ||
    code === '57P02' ||
    code === '57P03' ||
    code === '53300'
  )
}

/** Unique, foreign-key, not-null or check violations, on either database. */
export function isConflict(error: unknown): boolean {
  const code = dbErrorCode(error)
  return !!code && (code.startsWith('SQLITE_CONSTRAINT') || code.startsWith('23'))
}

/** Text PostgreSQL cannot store: the NUL character (SQLite takes it). */
export function isUnstorableText(error: unknown): boolean {
  const code = dbErrorCode(error)
  return code === '22021' || code === '22P05'
}
