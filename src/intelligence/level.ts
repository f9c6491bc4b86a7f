// The level a reading is compared with by the spike rule: the rolling window's median, moved along a
// robust slope. Medians by insertion sort into a reused buffer, so the hot path allocates nothing; the
// full window of 15 (the default) takes a faster path with the same results (below).

let scratch = new Float64Array(64)

/** Median of xs[from..to) by insertion sort into a reused buffer (no allocation on the hot path). */
function medianOf(xs: readonly number[], from: number, to: number): number {
  const n = to - from
  if (scratch.length < n) scratch = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const v = xs[from + i]!
    let j = i - 1
    while (j >= 0 && scratch[j]! > v) {
      scratch[j + 1] = scratch[j]!
      j--
    }
    scratch[j + 1] = v
  }
  const mid = n >> 1
  return n % 2 ? scratch[mid]! : (scratch[mid - 1]! + scratch[mid]!) / 2
}

/** Median of an ascending range. */
const sortedMedian = (xs: readonly number[], from: number, to: number) => {
  const mid = (from + to - 1) / 2
  return (xs[Math.floor(mid)]! + xs[Math.ceil(mid)]!) / 2
}

// The full window's medians without branches: on noisy readings a comparison's branch is a coin toss the
// processor guesses wrong half the time, which cost more than the comparisons. Each fifth is sorted by a
// nine-comparator network on its indices (integers: a pair out of order swaps by a mask, no branch), and
// the median of all 15 is the eighth element of the three sorted fifths' merge.

/** The three sorted fifths, each followed by eight infinities: the merge's eight steps never run past
 *  them, and when it takes one, everything left is infinite too (the eighth element is then +∞). */
const STRIDE = 13
const groups = new Float64Array(3 * STRIDE).fill(Infinity)

/** The mask that swaps indices p and q when xs[q] < xs[p] (the pair is out of order), else 0. */
const swap = (xs: readonly number[], p: number, q: number) => (p ^ q) & -+(xs[q]! < xs[p]!)

/** Sorts the window's fifths into groups by the network (0 3)(1 4)(0 2)(1 3)(0 1)(2 4)(1 2)(3 4)(2 3)
 *  on their indices, the three fifths side by side (independent work the processor overlaps); false
 *  when a fifth holds a NaN (which no comparison orders) or both infinities. */
function sortFifths(xs: readonly number[]) {
  let a0 = 0
  let a1 = 1
  let a2 = 2
  let a3 = 3
  let a4 = 4
  let b0 = 5
  let b1 = 6
  let b2 = 7
  let b3 = 8
  let b4 = 9
  let c0 = 10
  let c1 = 11
  let c2 = 12
  let c3 = 13
  let c4 = 14
  let d: number
  d = swap(xs, a0, a3)
  a0 ^= d
  a3 ^= d
  d = swap(xs, b0, b3)
  b0 ^= d
  b3 ^= d
  d = swap(xs, c0, c3)
  c0 ^= d
  c3 ^= d
  d = swap(xs, a1, a4)
  a1 ^= d
  a4 ^= d
  d = swap(xs, b1, b4)
  b1 ^= d
  b4 ^= d
  d = swap(xs, c1, c4)
  c1 ^= d
  c4 ^= d
  d = swap(xs, a0, a2)
  a0 ^= d
  a2 ^= d
  d = swap(xs, b0, b2)
  b0 ^= d
  b2 ^= d
  d = swap(xs, c0, c2)
  c0 ^= d
  c2 ^= d
  d = swap(xs, a1, a3)
  a1 ^= d
  a3 ^= d
  d = swap(xs, b1, b3)
  b1 ^= d
  b3 ^= d
  d = swap(xs, c1, c3)
  c1 ^= d
  c3 ^= d
  d = swap(xs, a0, a1)
  a0 ^= d
  a1 ^= d
  d = swap(xs, b0, b1)
  b0 ^= d
  b1 ^= d
  d = swap(xs, c0, c1)
  c0 ^= d
  c1 ^= d
  d = swap(xs, a2, a4)
  a2 ^= d
  a4 ^= d
  d = swap(xs, b2, b4)
  b2 ^= d
  b4 ^= d
  d = swap(xs, c2, c4)
  c2 ^= d
  c4 ^= d
  d = swap(xs, a1, a2)
  a1 ^= d
  a2 ^= d
  d = swap(xs, b1, b2)
  b1 ^= d
  b2 ^= d
  d = swap(xs, c1, c2)
  c1 ^= d
  c2 ^= d
  d = swap(xs, a3, a4)
  a3 ^= d
  a4 ^= d
  d = swap(xs, b3, b4)
  b3 ^= d
  b4 ^= d
  d = swap(xs, c3, c4)
  c3 ^= d
  c4 ^= d
  d = swap(xs, a2, a3)
  a2 ^= d
  a3 ^= d
  d = swap(xs, b2, b3)
  b2 ^= d
  b3 ^= d
  d = swap(xs, c2, c3)
  c2 ^= d
  c3 ^= d
  place(xs, 0, a0, a1, a2, a3, a4)
  place(xs, STRIDE, b0, b1, b2, b3, b4)
  place(xs, 2 * STRIDE, c0, c1, c2, c3, c4)
  const ok = (g: number) => {
    const sum = groups[g]! + groups[g + 1]! + groups[g + 2]! + groups[g + 3]! + groups[g + 4]!
    return sum === sum
  }
  return ok(0) && ok(STRIDE) && ok(2 * STRIDE)
}

function place(
  xs: readonly number[],
  to: number,
  p: number,
  q: number,
  r: number,
  s: number,
  u: number,
) {
  groups[to] = xs[p]!
  groups[to + 1] = xs[q]!
  groups[to + 2] = xs[r]!
  groups[to + 3] = xs[s]!
  groups[to + 4] = xs[u]!
}

/** The eighth smallest of the three sorted fifths: the median of 15. Each step takes the smallest head
 *  (the first on ties) and moves that fifth's index on, by masks. */
function mergedMedian(): number {
  let i = 0
  let j = STRIDE
  let k = 2 * STRIDE
  let v = 0
  for (let n = 0; n < 8; n++) {
    const a = groups[i]!
    const b = groups[j]!
    const c = groups[k]!
    const ta = +(a <= b) & +(a <= c)
    const tb = (ta ^ 1) & +(b <= c)
    const tc = (ta | tb) ^ 1
    v = groups[(i & -ta) | (j & -tb) | (k & -tc)]!
    i += ta
    j += tb
    k += tc
  }
  return v
}

/** Level expected at `t` from the window: its median, moved along a robust slope (medians of thirds). */
export function localLevel(ts: number[], xs: number[], t: number): number | null {
  const n = xs.length
  if (n < 5) return null
  const third = Math.max(2, Math.floor(n / 3))
  const dt = sortedMedian(ts, n - third, n) - sortedMedian(ts, 0, third)
  if (n === 15) {
    // An order statistic is one value whatever the method, but for the sign of a zero (0 and -0 compare
    // equal) and with a NaN about: a zero median, or a NaN, is left to the insertion sort.
    if (!sortFifths(xs)) return slowLevel(ts, xs, t, third, dt)
    let first = groups[2]!
    let last = groups[2 * STRIDE + 2]!
    if (first === 0) first = medianOf(xs, 0, 5)
    if (last === 0) last = medianOf(xs, 10, 15)
    let all = mergedMedian()
    if (all === 0) all = medianOf(xs, 0, 15)
    const slope = dt > 0 ? (last - first) / dt : 0
    return all + slope * (t - sortedMedian(ts, 0, n))
  }
  return slowLevel(ts, xs, t, third, dt)
}

function slowLevel(ts: number[], xs: number[], t: number, third: number, dt: number) {
  const n = xs.length
  const slope = dt > 0 ? (medianOf(xs, n - third, n) - medianOf(xs, 0, third)) / dt : 0
  return medianOf(xs, 0, n) + slope * (t - sortedMedian(ts, 0, n))
}

/** Appends (t, x) to the window, dropping its oldest reading past `size`: in place, no shift(), which
 *  costs more than moving 15 numbers. */
export function slide(ts: number[], xs: number[], t: number, x: number, size: number) {
  const full = xs.length >= size
  along(ts, t, full)
  along(xs, x, full)
}

function along(a: number[], v: number, full: boolean) {
  if (!full) {
    a.push(v)
    return
  }
  const n = a.length
  if (n === 0) return
  for (let i = 1; i < n; i++) a[i - 1] = a[i]!
  a[n - 1] = v
}
