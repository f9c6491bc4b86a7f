// The Numenta Anomaly Benchmark's scoring, written from NAB v1.1 (nab/sweeper.py, nab/optimizer.py,
// nab/scorer.py and Runner.normalize; Lavin & Ahmad, ICMLA 2015): every row gets a weight from the
// scaled sigmoid of its place relative to the anomaly windows, a threshold turns anomaly scores into
// detections, a window counts once (its earliest detection) or costs fnWeight, every detection outside
// a window costs up to fpWeight, the first 15 % of a file (at most 750 rows) is not scored, and
// the total is normalized so that the null detector scores 0 and the perfect one 100.

export interface CostMatrix {
  tpWeight: number
  fpWeight: number
  fnWeight: number
}

export type ProfileName = 'standard' | 'reward_low_FP_rate' | 'reward_low_FN_rate'
export const PROFILE_NAMES: readonly ProfileName[] = [
  'standard',
  'reward_low_FP_rate',
  'reward_low_FN_rate',
]

/** One scorable row: its anomaly score, its weight if it were a detection, and its window. */
export interface SweepPoint {
  score: number
  /** What a detection here adds: a true positive's weight inside a window, a false positive's cost outside. */
  weight: number
  /** The window's corpus-wide name inside a window, null outside, PROBATION in the probationary period. */
  window: string | null
}

export const PROBATION = '\0probationary'

export interface ThresholdScore {
  threshold: number
  score: number
  tp: number
  tn: number
  fp: number
  fn: number
  total: number
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x))

/**
 * -1 at the far left edge of a window gives 0.98661, its right edge 0; past the window the value goes
 * towards -1 (a false positive long after a window costs the full weight).
 */
export function scaledSigmoid(relativePosition: number): number {
  if (relativePosition > 3) return -1
  return 2 * sigmoid(-5 * relativePosition) - 1
}

const MAX_TP = scaledSigmoid(-1)

/** Rows not scored at the start of a file: 15 % of it, at most 750 (NAB caps it at 15 % of 5,000). */
export const probationLength = (rows: number, percent = 0.15) =>
  Math.min(Math.floor(percent * rows), percent * 5000)

/**
 * The weight of every row of one file, as NAB's Sweeper.calcSweepScore: inside a window the true-positive
 * weight falls from tpWeight at its first row towards 0 at its last; outside, a detection costs fpWeight
 * scaled by how far it is past the previous window (the full cost before any window).
 */
export function sweep(
  timestamps: readonly number[],
  scores: readonly number[],
  windows: readonly (readonly [number, number])[],
  name: string,
  cost: CostMatrix,
  probationPercent = 0.15,
): SweepPoint[] {
  if (timestamps.length !== scores.length)
    throw new Error(`${name}: ${timestamps.length} timestamps but ${scores.length} anomaly scores`)
  const out: SweepPoint[] = []
  const probation = probationLength(timestamps.length, probationPercent)
  const indexOf = (t: number) => {
    const i = timestamps.indexOf(t)
    if (i < 0) throw new Error(`${name}: window limit ${new Date(t).toISOString()} is not a row`)
    return i
  }
  let next = 0
  let current: readonly [number, number] | null = null
  let currentName: string | null = null
  let right = 0
  let width = 0
  let prevRight: number | null = null
  let prevWidth = 0
  for (let i = 0; i < timestamps.length; i++) {
    const t = timestamps[i]!
    if (next < windows.length && t === windows[next]![0]) {
      current = windows[next++]!
      currentName = `${name}|${current[0]}`
      right = indexOf(current[1])
      width = right - indexOf(current[0]) + 1
    }
    let weight: number
    if (current) weight = (scaledSigmoid(-(right - i + 1) / width) * cost.tpWeight) / MAX_TP
    else {
      const unweighted =
        prevRight === null ? -1 : scaledSigmoid(Math.abs(prevRight - i) / (prevWidth - 1))
      weight = unweighted * cost.fpWeight
    }
    out.push({ score: scores[i]!, weight, window: i >= probation ? currentName : PROBATION })
    if (current && t === current[1]) {
      prevRight = i
      prevWidth = width
      current = null
      currentName = null
    }
  }
  return out
}

/**
 * The score at every threshold, highest threshold first (NAB's calcScoreByThreshold): a threshold
 * detects the rows whose anomaly score is at or above it; the first entry, 1.1, detects nothing.
 */
export function scoreByThreshold(points: readonly SweepPoint[], cost: CostMatrix) {
  const scorable = points.filter((p) => p.window !== PROBATION).sort((a, b) => b.score - a.score)
  const parts = new Map<string, number>()
  let tn = 0
  let fn = 0
  for (const p of scorable) {
    if (p.window === null) tn += 1
    else {
      fn += 1
      parts.set(p.window, -cost.fnWeight)
    }
  }
  let windowsSum = -cost.fnWeight * parts.size
  let fpSum = 0
  let tp = 0
  let fp = 0
  const out: ThresholdScore[] = []
  let threshold = 1.1
  const save = () =>
    out.push({ threshold, score: fpSum + windowsSum, tp, tn, fp, fn, total: tp + tn + fp + fn })
  for (const p of scorable) {
    if (p.score !== threshold) {
      save()
      threshold = p.score
    }
    if (p.window === null) {
      fp += 1
      tn -= 1
      fpSum += p.weight
    } else {
      tp += 1
      fn -= 1
      const old = parts.get(p.window)!
      if (p.weight > old) {
        parts.set(p.window, p.weight)
        windowsSum += p.weight - old
      }
    }
  }
  save()
  return out
}

/** The entry for `threshold` (NAB's Sweeper.scoreDataSet): that threshold, or the last one above it. */
export function atThreshold(scores: readonly ThresholdScore[], threshold: number): ThresholdScore {
  let prev: ThresholdScore | undefined
  for (const s of scores) {
    if (s.threshold === threshold) return s
    if (s.threshold < threshold) return prev ?? s
    prev = s
  }
  return scores[scores.length - 1]!
}

/** The threshold with the best score over all the given rows (NAB's optimizer; ties: the highest). */
export function optimizeThreshold(points: readonly SweepPoint[], cost: CostMatrix) {
  let best: ThresholdScore | undefined
  for (const s of scoreByThreshold(points, cost)) if (!best || s.score > best.score) best = s
  return best!
}

/**
 * What each row adds to the file's score at `threshold`, as NAB's published S(t) columns: a detection
 * outside a window its cost, and each window's first row the window's result (its best detection's
 * weight, or -fnWeight when nothing in it was detected).
 */
export function rowContributions(
  points: readonly SweepPoint[],
  threshold: number,
  cost: CostMatrix,
): number[] {
  const out: number[] = Array(points.length).fill(0)
  const best = new Map<string, { first: number; value: number }>()
  points.forEach((p, i) => {
    if (p.window === PROBATION) return
    if (p.window === null) {
      if (p.score >= threshold) out[i] = p.weight
      return
    }
    let w = best.get(p.window)
    if (!w) best.set(p.window, (w = { first: i, value: -cost.fnWeight }))
    if (p.score >= threshold) w.value = Math.max(w.value, p.weight)
  })
  for (const { first, value } of best.values()) out[first] = value
  return out
}

/** NAB's normalization: 100 × (raw − null) / (perfect − null). */
export const normalize = (raw: number, nullScore: number, perfect: number) =>
  (100 * (raw - nullScore)) / (perfect - nullScore)
