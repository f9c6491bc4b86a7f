// The NAB scorer: on the published output of the windowed-Gaussian detector it must find NAB's own
// threshold, per-file scores and counts, per-row S(t) and normalized totals, for all three profiles.
// Reads the corpus from NAB_DIR or /work/shared/nab (see docs/intelligence-nab.md).
import { describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  loadCorpus,
  loadProfiles,
  nabDir,
  readCsv,
  readResultScores,
  scoreCorpus,
} from '../scripts/nab/corpus'
import {
  PROBATION,
  PROFILE_NAMES,
  optimizeThreshold,
  rowContributions,
  scaledSigmoid,
  scoreByThreshold,
  sweep,
} from '../scripts/nab/scorer'

setDefaultTimeout(120_000)

const COST = { tpWeight: 1, fpWeight: 0.11, fnWeight: 1 }
const MIN = 60_000

describe('the NAB scorer on small series', () => {
  // 100 rows, one window over rows 40..59; the first 15 rows are probationary.
  const ts = Array.from({ length: 100 }, (_, i) => i * MIN)
  const windows: [number, number][] = [[40 * MIN, 59 * MIN]]
  const score = (detections: number[]) => {
    const scores = ts.map((_, i) => (detections.includes(i) ? 1 : 0))
    const points = sweep(ts, scores, windows, 'f', COST)
    return scoreByThreshold(points, COST).find((s) => s.threshold === 1)?.score ?? -1
  }

  test('gives the full true-positive weight to a detection on the first row of a window', () => {
    expect(score([40])).toBeCloseTo(1, 12)
    expect(scaledSigmoid(-1)).toBeCloseTo(0.98661, 5)
    expect(scaledSigmoid(0)).toBe(0)
  })

  test('rewards an early detection more than a late one, and counts a window once', () => {
    expect(score([45])).toBeGreaterThan(score([58]))
    expect(score([45, 50, 55])).toBeCloseTo(score([45]), 12)
  })

  test('charges a false positive the full weight before any window, less just after one', () => {
    expect(score([20, 40]) - score([40])).toBeCloseTo(-0.11, 12)
    const justAfter = score([40, 61]) - score([40])
    expect(justAfter).toBeLessThan(0)
    expect(justAfter).toBeGreaterThan(-0.11)
  })

  test('ignores detections in the probationary period and charges a missed window fnWeight', () => {
    expect(score([3])).toBe(-1)
    const points = sweep(ts, Array(100).fill(0), windows, 'f', COST)
    expect(points.slice(0, 15).every((p) => p.window === PROBATION)).toBe(true)
    expect(points[15]!.window).toBeNull()
  })

  test('optimizes the threshold that separates window rows from the rest', () => {
    const scores = ts.map((_, i) => (i === 42 ? 0.9 : i === 70 ? 0.8 : 0.1))
    const best = optimizeThreshold(sweep(ts, scores, windows, 'f', COST), COST)
    expect(best.threshold).toBe(0.9)
    expect(best.tp).toBe(1)
    expect(best.fp).toBe(0)
  })
})

describe('the NAB scorer on the published windowed-Gaussian results', () => {
  const dir = nabDir()
  const files = loadCorpus(dir)
  const profiles = loadProfiles(dir)
  const scores = readResultScores(dir, 'windowedGaussian', files)
  const results = scoreCorpus(files, scores, profiles)
  const published = JSON.parse(readFileSync(join(dir, 'results', 'final_results.json'), 'utf8'))

  test('reads all 58 series and 116 windows', () => {
    expect(files).toHaveLength(58)
    expect(files.reduce((s, f) => s + f.windows.length, 0)).toBe(116)
  })

  for (const profile of PROFILE_NAMES)
    test(`reproduces NAB's ${profile} threshold, every file's score and counts, and the normalized total`, () => {
      const result = results.find((r) => r.profile === profile)!
      const rows = readCsv(
        join(dir, 'results', 'windowedGaussian', `windowedGaussian_${profile}_scores.csv`),
        ['Detector', 'Profile', 'File', 'Threshold', 'Score', 'TP', 'TN', 'FP', 'FN'],
      )
      const perFile = rows.filter((r) => r[0] !== 'Totals')
      expect(perFile).toHaveLength(58)
      expect(result.threshold).toBe(Number(perFile[0]![3]))
      for (const row of perFile) {
        const mine = result.files.find((f) => f.path === row[2])!
        expect(Math.abs(mine.score - Number(row[4]))).toBeLessThan(0.1)
        expect(mine.score).toBeCloseTo(Number(row[4]), 6)
        expect([mine.tp, mine.tn, mine.fp, mine.fn]).toEqual(row.slice(5, 9).map(Number))
      }
      const totals = rows.find((r) => r[0] === 'Totals')!
      expect(result.raw).toBeCloseTo(Number(totals[4]), 6)
      expect(Math.abs(result.normalized - published.windowedGaussian[profile])).toBeLessThan(0.1)
      expect(result.normalized).toBeCloseTo(published.windowedGaussian[profile], 6)
    })

  test("reproduces every row's published S(t) for all three profiles", () => {
    let rowsChecked = 0
    for (const file of files) {
      const [category, name] = file.path.split('/')
      const columns = PROFILE_NAMES.map((p) => `S(t)_${p}`)
      const path = join(dir, 'results', 'windowedGaussian', category!, `windowedGaussian_${name}`)
      const header = readFileSync(path, 'utf8').slice(0, 200).split('\n')[0]!.split(',')
      const rows = readCsv(path, header)
      const anomaly = rows.map((r) => Number(r[2]))
      for (const [k, profile] of PROFILE_NAMES.entries()) {
        const cost = profiles[profile]
        const column = header.indexOf(columns[k]!)
        const mine = rowContributions(
          sweep(file.timestamps, anomaly, file.windows, file.path, cost),
          1,
          cost,
        )
        const worst = rows.reduce(
          (m, r, i) => Math.max(m, Math.abs(Number(r[column]) - mine[i]!)),
          0,
        )
        expect(worst).toBeLessThan(1e-6)
        rowsChecked += rows.length
      }
    }
    expect(rowsChecked).toBe(3 * files.reduce((s, f) => s + f.timestamps.length, 0))
  })
})
