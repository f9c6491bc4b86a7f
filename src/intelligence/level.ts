// The level a reading is compared with by the spike rule: the rolling window's median, moved along a
// robust slope. Medians by insertion sort into a reused buffer, so the hot path allocates nothing.

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

/** Level expected at `t` from the window: its median, moved along a robust slope (medians of thirds). */
export function localLevel(ts: number[], xs: number[], t: number): number | null {
  const n = xs.length
  if (n < 5) return null
  const third = Math.max(2, Math.floor(n / 3))
  const dt = sortedMedian(ts, n - third, n) - sortedMedian(ts, 0, third)
  const slope = dt > 0 ? (medianOf(xs, n - third, n) - medianOf(xs, 0, third)) / dt : 0
  return medianOf(xs, 0, n) + slope * (t - sortedMedian(ts, 0, n))
}
