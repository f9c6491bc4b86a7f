// The level a reading is compared with by the spike rule: the rolling window's median, moved along a
// robust slope. Medians by insertion sort into a reused buffer, so the hot path allocates nothing; the
// full window of 15 (the default) takes a faster path with the same results.

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

/** The window's three fifths, each sorted. */
const groups = new Float64Array(15)

/** Sorts xs[at..at+5) into groups[at..at+5) by a nine-comparator network; returns the median, or NaN
 *  when the five hold a NaN (which no comparison moves) or both infinities. */
function sortFive(xs: readonly number[], at: number): number {
  let a = xs[at]!
  let b = xs[at + 1]!
  let c = xs[at + 2]!
  let d = xs[at + 3]!
  let e = xs[at + 4]!
  const sum = a + b + c + d + e
  let l: number
  if (a > d) ((l = a), (a = d), (d = l))
  if (b > e) ((l = b), (b = e), (e = l))
  if (a > c) ((l = a), (a = c), (c = l))
  if (b > d) ((l = b), (b = d), (d = l))
  if (a > b) ((l = a), (a = b), (b = l))
  if (c > e) ((l = c), (c = e), (e = l))
  if (b > c) ((l = b), (b = c), (c = l))
  if (d > e) ((l = d), (d = e), (e = l))
  if (c > d) ((l = c), (c = d), (d = l))
  groups[at] = a
  groups[at + 1] = b
  groups[at + 2] = c
  groups[at + 3] = d
  groups[at + 4] = e
  return sum === sum ? c : NaN
}

/** The eighth smallest of the three sorted fifths: the median of 15. */
function mergedMedian(): number {
  let i = 0
  let j = 5
  let k = 10
  let v = 0
  for (let n = 0; n < 8; n++) {
    const a = i < 5 ? groups[i]! : Infinity
    const b = j < 10 ? groups[j]! : Infinity
    const c = k < 15 ? groups[k]! : Infinity
    if (i < 5 && a <= b && a <= c) v = groups[i++]!
    else if (j < 10 && b <= c) v = groups[j++]!
    else v = groups[k++]!
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
    let first = sortFive(xs, 0)
    const middle = sortFive(xs, 5)
    let last = sortFive(xs, 10)
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
