// `bun run eval:nab [--out DIR] [--skip-forecast]`: runs Vigía's detector over every series of the
// Numenta Anomaly Benchmark (NAB_DIR or /work/shared/nab), writes NAB-format result files (default
// .tmp/nab-results/vigia), prints the normalized scores of the three profiles beside NAB's scoreboard,
// per category too, then the forecasters' MASE on NAB's seasonal series (scripts/nab/forecast.ts).
import { join } from 'node:path'
import {
  byCategory,
  loadCorpus,
  loadProfiles,
  nabDir,
  scoreCorpus,
  type NabFile,
  type ProfileResult,
} from './nab/corpus'
import { runDetector } from './nab/detect'
import { forecastReport } from './nab/forecast'
import { writeResults } from './nab/results'
import { normalize, PROFILE_NAMES, type CostMatrix, type ProfileName } from './nab/scorer'

const DETECTOR = 'vigia'
/** The score of a hit at its rule's limit: what production raises. */
const PRODUCTION = 0.5

/** NAB's published normalized scores (results/final_results.json, NAB v1.1): standard, low FP, low FN. */
const SCOREBOARD: [string, number, number, number][] = [
  ['ARTime', 74.9, 65.2, 80.4],
  ['Numenta HTM', 70.1, 63.1, 74.3],
  ['contextOSE', 69.9, 67.0, 73.2],
  ['Skyline (earthgecko)', 58.2, 46.2, 63.8],
  ['KNN-CAD', 58.0, 43.4, 64.8],
  ['relative entropy', 54.6, 47.6, 58.8],
  ['random cut forest', 51.7, 38.4, 59.7],
  ['windowed Gaussian', 39.6, 20.9, 47.4],
  ['random', 16.8, 5.8, 25.9],
]

const fixed = (x: number | null, digits = 1) => (x === null ? 'n/a' : x.toFixed(digits))
const table = (head: string[], rows: (string | number)[][]) =>
  [
    `| ${head.join(' | ')} |`,
    `| ${head.map(() => '---').join(' | ')} |`,
    ...rows.map((r) => `| ${r.join(' | ')} |`),
  ].join('\n')
const all = (threshold: number) =>
  Object.fromEntries(PROFILE_NAMES.map((p) => [p, threshold])) as Record<ProfileName, number>

/** Windows with a detection at `threshold` (scored rows only, as NAB counts them). */
function windowsFound(files: NabFile[], scores: Map<string, number[]>, threshold: number) {
  let found = 0
  for (const f of files) {
    const s = scores.get(f.path)!
    for (const [a, b] of f.windows)
      if (f.timestamps.some((t, i) => t >= a && t <= b && s[i]! >= threshold)) found += 1
  }
  return found
}

/**
 * NAB's threshold optimization without its optimism: files alternate into two halves (sorted by
 * path), each half's threshold is the one NAB's optimizer picks on the other, and the held-out scores
 * are added up and normalized as the whole corpus is.
 */
function crossValidated(
  files: NabFile[],
  scores: Map<string, number[]>,
  profiles: Record<ProfileName, CostMatrix>,
  whole: ProfileResult[],
) {
  const halves = [files.filter((_, i) => i % 2 === 0), files.filter((_, i) => i % 2 === 1)]
  const raw = Object.fromEntries(PROFILE_NAMES.map((p) => [p, 0])) as Record<ProfileName, number>
  const thresholds: string[] = []
  for (const [k, test] of halves.entries()) {
    const tuned = scoreCorpus(halves[1 - k]!, scores, profiles)
    const held = scoreCorpus(
      test,
      scores,
      profiles,
      Object.fromEntries(tuned.map((r) => [r.profile, r.threshold])),
    )
    for (const r of held) raw[r.profile] += r.raw
    thresholds.push(tuned.map((r) => r.threshold.toFixed(3)).join('/'))
  }
  return {
    thresholds,
    normalized: whole.map((r) => normalize(raw[r.profile], r.nullScore, r.perfect)),
  }
}

async function main() {
  const args = process.argv.slice(2)
  const outAt = args.indexOf('--out')
  const outRoot = outAt >= 0 ? args[outAt + 1]! : join(import.meta.dir, '..', '.tmp', 'nab-results')
  const dir = nabDir()
  const files = loadCorpus(dir)
  const profiles = loadProfiles(dir)

  const began = performance.now()
  const scores = new Map<string, number[]>()
  const opens = new Map<string, number[]>()
  const kinds: Record<string, number> = {}
  let opened = 0
  let rows = 0
  for (const file of files) {
    const run = runDetector(file)
    scores.set(file.path, run.scores)
    opens.set(file.path, run.opens)
    for (const [k, v] of Object.entries(run.hits)) kinds[k] = (kinds[k] ?? 0) + v
    opened += run.opened
    rows += file.values.length
  }
  const detectMs = performance.now() - began

  const production = scoreCorpus(files, scores, profiles, all(PRODUCTION))
  const optimized = scoreCorpus(files, scores, profiles)
  const notified = scoreCorpus(files, opens, profiles, all(PRODUCTION))
  const split = crossValidated(files, scores, profiles, optimized)
  const written = writeResults(outRoot, DETECTOR, files, scores, profiles, production)
  const windows = production[0]!.perfect

  const board = [
    ...SCOREBOARD,
    ['**Vigía, as deployed**', ...production.map((r) => r.normalized)],
    ['Vigía, NAB-optimized threshold', ...optimized.map((r) => r.normalized)],
  ] as [string, number, number, number][]
  board.sort((a, b) => b[1] - a[1])
  const counts = (r: ProfileResult, threshold: number) => [
    `${windowsFound(files, scores, threshold)} / ${windows}`,
    r.files.reduce((s, f) => s + f.fp, 0),
  ]
  const out = [
    `NAB v1.1: ${files.length} series, ${rows.toLocaleString('en')} readings, ${windows} anomaly windows (${dir}). ` +
      'Each series fed to the detector as one sensor variable, the way ingest feeds it; anomaly_score = ' +
      `the score of the statistical hit a reading raised (0.5 at a rule's limit), else 0 (${(detectMs / 1000).toFixed(1)} s).`,
    '',
    `Hits: ${Object.entries(kinds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; ${opened} anomalies opened (default auto-resolve).`,
    '',
    table(
      ['detector', 'standard', 'reward low FP', 'reward low FN'],
      board.map(([name, ...s]) => [name, ...s.map((x) => fixed(x))]),
    ),
    '',
    table(
      [
        'Vigía',
        'profile',
        'threshold',
        'raw',
        'normalized',
        'windows detected',
        'detections outside windows',
      ],
      [
        ...production.map((r) => [
          'as deployed',
          r.profile,
          PRODUCTION,
          fixed(r.raw, 2),
          fixed(r.normalized),
          ...counts(r, PRODUCTION),
        ]),
        ...optimized.map((r) => [
          'NAB-optimized',
          r.profile,
          fixed(r.threshold, 3),
          fixed(r.raw, 2),
          fixed(r.normalized),
          ...counts(r, r.threshold),
        ]),
      ],
    ),
    '',
    `Counting only the hits that opened an anomaly (what an operator is notified of; later hits fold into it): ` +
      `standard ${fixed(notified[0]!.normalized)}, reward low FP ${fixed(notified[1]!.normalized)}, ` +
      `reward low FN ${fixed(notified[2]!.normalized)} (${notified[0]!.files.reduce((s, f) => s + f.fp, 0)} outside windows).`,
    '',
    `Threshold optimized on one half of the files and scored on the other (2-fold, files alternating by path; ` +
      `thresholds ${split.thresholds.join(' and ')}): standard ${fixed(split.normalized[0]!)}, ` +
      `reward low FP ${fixed(split.normalized[1]!)}, reward low FN ${fixed(split.normalized[2]!)}.`,
    '',
    "Per category, as deployed (normalized between that category's null and perfect scores; " +
      'artificialNoAnomaly has no window, so its raw score is the cost of its false alarms):',
    '',
    table(
      [
        'category',
        'files',
        'windows',
        'standard',
        'reward low FP',
        'reward low FN',
        'detections outside windows',
      ],
      byCategory(production[0]!, files, profiles.standard).map((c, k) => {
        const per = production.map((r) => byCategory(r, files, profiles[r.profile])[k]!)
        return [
          c.category,
          c.files,
          c.windows,
          ...per.map((p) =>
            p.normalized === null ? `raw ${fixed(p.raw, 2)}` : fixed(p.normalized),
          ),
          c.fp,
        ]
      }),
    ),
    '',
    `Result files (NAB layout, S(t) at threshold ${PRODUCTION}): ${written}`,
  ]
  console.log(out.join('\n'))
  if (!args.includes('--skip-forecast')) console.log(`\n${await forecastReport(files)}`)
}

await main()
