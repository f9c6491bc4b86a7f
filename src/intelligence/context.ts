// Contextual novelty, in the spirit of NAB's contextOSE without its knowledge of a file's range: each
// reading falls on one of eight levels of the range the variable has shown so far (or below or above
// it), and the pair (previous reading's level, this one's) is a context. The contexts the variable has
// been in are a 100-bit set in four numbers of JSON state; a hit in a context it has never been in
// grades higher (grade.ts). It never decides whether a hit is raised.

/** Levels of the range seen so far: contextOSE's three bits. */
export const LEVELS = 8
/** Below the range, the eight levels, above it. */
const SYMBOLS = LEVELS + 2
/** Bits per number of the set (bitwise operators stay within 32-bit integers). */
const BITS = 25

/** The range seen so far and the set of (previous level, level) pairs seen. */
export interface Context {
  lo: number | null
  hi: number | null
  /** The previous reading's level, as it was placed then (null before the first reading). */
  at: number | null
  seen: number[]
}

export const newContext = (): Context => ({
  lo: null,
  hi: null,
  at: null,
  seen: Array(Math.ceil((SYMBOLS * SYMBOLS) / BITS)).fill(0),
})

/** 0 below the range, 1 to LEVELS on it, LEVELS + 1 above it (1 while it is a single value). */
function symbol(c: Context, x: number) {
  if (c.lo === null || c.hi === null || !(c.hi > c.lo)) return 1
  if (x < c.lo) return 0
  if (x > c.hi) return LEVELS + 1
  return Math.min(LEVELS - 1, Math.floor((LEVELS * (x - c.lo)) / (c.hi - c.lo))) + 1
}

/**
 * Whether the step from the previous reading's level to x's is a context the variable has been in (true
 * for its first reading, and while `learn` is false); then learns the context (when `learn`), the
 * level and the range.
 */
export function learnContext(c: Context, x: number, learn = true): boolean {
  let familiar = true
  const at = symbol(c, x)
  if (c.at !== null && learn) {
    const i = c.at * SYMBOLS + at
    const word = Math.floor(i / BITS)
    const bit = 1 << (i % BITS)
    familiar = (c.seen[word]! & bit) !== 0
    c.seen[word] = c.seen[word]! | bit
  }
  c.at = at
  c.lo = c.lo === null ? x : Math.min(c.lo, x)
  c.hi = c.hi === null ? x : Math.max(c.hi, x)
  return familiar
}
