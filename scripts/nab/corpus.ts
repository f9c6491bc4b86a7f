// The NAB corpus on disk (series, anomaly windows, profiles) and the scoring of a detector's anomaly
// scores over all of it, as NAB's Runner does: a threshold per profile optimized over the whole corpus
// (or given), each file scored at it, totals normalized between the null and the perfect detector.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import {
  atThreshold,
  normalize,
  optimizeThreshold,
  PROFILE_NAMES,
  scoreByThreshold,
  sweep,
  type CostMatrix,
  type ProfileName,
  type SweepPoint,
  type ThresholdScore,
} from './scorer'

/** Where NAB's data lives: NAB_DIR, or the shared copy on the project's machine (CI runs there too). */
export function nabDir(): string {
  const dir = process.env.NAB_DIR || '/work/shared/nab'
  if (!existsSync(join(dir, 'labels', 'combined_windows.json')))
    throw new Error(
      `The NAB corpus is not at ${dir}: set NAB_DIR to a copy of numenta/NAB (data/, labels/, config/, results/).`,
    )
  return dir
}

export interface NabFile {
  /** As NAB names it: `<category>/<name>.csv`. */
  path: string
  category: string
  /** The timestamps exactly as written in the file, and as UTC milliseconds. */
  stamps: string[]
  timestamps: number[]
  values: number[]
  windows: [number, number][]
}

/** NAB's `YYYY-MM-DD HH:MM:SS[.ffffff]`, read as UTC. */
export function parseStamp(s: string): number {
  const t = Date.parse(`${s.slice(0, 10)}T${s.slice(11, 19)}Z`)
  if (Number.isNaN(t)) throw new Error(`Not a NAB timestamp: "${s}"`)
  return t
}

/** Rows of a NAB CSV (no quoting in NAB's files), checked against the expected leading columns. */
export function readCsv(file: string, columns: string[]): string[][] {
  const lines = readFileSync(file, 'utf8').trimEnd().split(/\r?\n/)
  const header = lines[0]!.split(',')
  if (columns.some((c, i) => header[i] !== c))
    throw new Error(`${file}: expected columns ${columns.join(',')}, found ${lines[0]}`)
  return lines.slice(1).map((line) => line.split(','))
}

export function loadProfiles(dir: string): Record<ProfileName, CostMatrix> {
  const raw = JSON.parse(readFileSync(join(dir, 'config', 'profiles.json'), 'utf8'))
  return Object.fromEntries(PROFILE_NAMES.map((p) => [p, raw[p].CostMatrix])) as Record<
    ProfileName,
    CostMatrix
  >
}

/** Every series of the corpus with its windows, in a stable order (category, then name). */
export function loadCorpus(dir = nabDir()): NabFile[] {
  const windows = JSON.parse(
    readFileSync(join(dir, 'labels', 'combined_windows.json'), 'utf8'),
  ) as Record<string, [string, string][]>
  return Object.keys(windows)
    .sort()
    .map((path) => {
      const rows = readCsv(join(dir, 'data', path), ['timestamp', 'value'])
      return {
        path,
        category: path.split('/')[0]!,
        stamps: rows.map((r) => r[0]!),
        timestamps: rows.map((r) => parseStamp(r[0]!)),
        values: rows.map((r) => Number(r[1])),
        windows: windows[path]!.map(([a, b]) => [parseStamp(a), parseStamp(b)] as [number, number]),
      }
    })
}

/** A detector's published `anomaly_score` column per file, from `results/<detector>/`. */
export function readResultScores(dir: string, detector: string, files: NabFile[]) {
  const out = new Map<string, number[]>()
  for (const file of files) {
    const [category, name] = file.path.split('/')
    const rows = readCsv(join(dir, 'results', detector, category!, `${detector}_${name}`), [
      'timestamp',
      'value',
      'anomaly_score',
    ])
    out.set(
      file.path,
      rows.map((r) => Number(r[2])),
    )
  }
  return out
}

export interface FileScore extends ThresholdScore {
  path: string
  category: string
  windows: number
}

export interface ProfileResult {
  profile: ProfileName
  threshold: number
  raw: number
  normalized: number
  nullScore: number
  perfect: number
  files: FileScore[]
}

/** The null detector's total (a constant score, its threshold optimized): NAB's baseline. */
function nullScore(files: NabFile[], cost: CostMatrix) {
  const points: SweepPoint[] = []
  for (const f of files)
    points.push(
      ...sweep(f.timestamps, Array(f.timestamps.length).fill(0.5), f.windows, f.path, cost),
    )
  return optimizeThreshold(points, cost).score
}

/**
 * Scores anomaly scores per file under every profile. Without a threshold for a profile, it is the
 * one that maximizes that profile's score over these files (what NAB's optimize step does).
 */
export function scoreCorpus(
  files: NabFile[],
  scores: Map<string, readonly number[]>,
  profiles: Record<ProfileName, CostMatrix>,
  thresholds: Partial<Record<ProfileName, number>> = {},
): ProfileResult[] {
  return PROFILE_NAMES.map((profile) => {
    const cost = profiles[profile]
    const swept = files.map((f) => {
      const s = scores.get(f.path)
      if (!s) throw new Error(`No anomaly scores for ${f.path}`)
      return sweep(f.timestamps, s, f.windows, f.path, cost)
    })
    const threshold = thresholds[profile] ?? optimizeThreshold(swept.flat(), cost).threshold
    const perFile = files.map((f, i) => ({
      path: f.path,
      category: f.category,
      windows: f.windows.length,
      ...atThreshold(scoreByThreshold(swept[i]!, cost), threshold),
    }))
    const raw = perFile.reduce((s, f) => s + f.score, 0)
    const base = nullScore(files, cost)
    const perfect = files.reduce((s, f) => s + f.windows.length, 0) * cost.tpWeight
    return {
      profile,
      threshold,
      raw,
      normalized: normalize(raw, base, perfect),
      nullScore: base,
      perfect,
      files: perFile,
    }
  })
}

/** Per category: raw total, null and perfect totals of its files, and the normalized score. */
export function byCategory(result: ProfileResult, files: NabFile[], cost: CostMatrix) {
  const categories = [...new Set(files.map((f) => f.category))]
  return categories.map((category) => {
    const of = files.filter((f) => f.category === category)
    const scored = result.files.filter((f) => f.category === category)
    const raw = scored.reduce((s, f) => s + f.score, 0)
    const windows = of.reduce((s, f) => s + f.windows.length, 0)
    const base = windows === 0 ? 0 : nullScore(of, cost)
    const perfect = windows * cost.tpWeight
    return {
      category,
      files: of.length,
      windows,
      raw,
      normalized: windows === 0 ? null : normalize(raw, base, perfect),
      tp: scored.reduce((s, f) => s + f.tp, 0),
      fp: scored.reduce((s, f) => s + f.fp, 0),
    }
  })
}
