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

/** -1 when xs[q] < xs[p] (the pair is out of order), else 0. */
const outOfOrder = (xs: readonly number[], p: number, q: number) => -+(xs[q]! < xs[p]!)

/** Sorts xs[at..at+5) into groups[to..to+5); returns the median, or NaN when the five hold a NaN (which
 *  no comparison orders) or both infinities. */
function sortFive(xs: readonly number[], at: number, to: number): number {
  let p0 = at
  let p1 = at + 1
  let p2 = at + 2
  let p3 = at + 3
  let p4 = at + 4
  let d = (p0 ^ p3) & outOfOrder(xs, p0, p3)
  p0 ^= d
  p3 ^= d
  d = (p1 ^ p4) & outOfOrder(xs, p1, p4)
  p1 ^= d
  p4 ^= d
  d = (p0 ^ p2) & outOfOrder(xs, p0, p2)
  p0 ^= d
  p2 ^= d
  d = (p1 ^ p3) & outOfOrder(xs, p1, p3)
  p1 ^= d
  p3 ^= d
  d = (p0 ^ p1) & outOfOrder(xs, p0, p1)
  p0 ^= d
  p1 ^= d
  d = (p2 ^ p4) & outOfOrder(xs, p2, p4)
  p2 ^= d
  p4 ^= d
  d = (p1 ^ p2) & outOfOrder(xs, p1, p2)
  p1 ^= d
  p2 ^= d
  d = (p3 ^ p4) & outOfOrder(xs, p3, p4)
  p3 ^= d
  p4 ^= d
  d = (p2 ^ p3) & outOfOrder(xs, p2, p3)
  p2 ^= d
  p3 ^= d
  const a = xs[p0]!
  const b = xs[p1]!
  const c = xs[p2]!
  const e = xs[p3]!
  const f = xs[p4]!
  groups[to] = a
  groups[to + 1] = b
  groups[to + 2] = c
  groups[to + 3] = e
  groups[to + 4] = f
  const sum = a + b + c + e + f
  return sum === sum ? c : NaN
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
    let first = sortFive(xs, 0, 0)
    const middle = sortFive(xs, 5, STRIDE)
    let last = sortFive(xs, 10, 2 * STRIDE)
    if (first !== first || middle !== middle || last !== last)
      return slowLevel(ts, xs, t, third, dt)
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
