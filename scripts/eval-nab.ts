// `bun run eval:nab [--out DIR]`: runs Vigía's detector over every series of the Numenta Anomaly
// Benchmark (NAB_DIR or /work/shared/nab), writes NAB-format result files (default .tmp/nab-results/vigia)
// and prints the normalized scores of the three profiles, per category too, beside NAB's scoreboard.
import { join } from 'node:path'
import { byCategory, loadCorpus, loadProfiles, nabDir, scoreCorpus } from './nab/corpus'
import { runDetector } from './nab/detect'
import { writeResults } from './nab/results'
import { PROFILE_NAMES } from './nab/scorer'

const DETECTOR = 'vigia'

/** NAB's published normalized scores (results/final_results.json, NAB v1.1), standard profile first. */
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

async function main() {
  const args = process.argv.slice(2)
  const outAt = args.indexOf('--out')
  const outRoot = outAt >= 0 ? args[outAt + 1]! : join(import.meta.dir, '..', '.tmp', 'nab-results')
  const dir = nabDir()
  const files = loadCorpus(dir)
  const profiles = loadProfiles(dir)

  const began = performance.now()
  const scores = new Map<string, number[]>()
  const kinds: Record<string, number> = {}
  let opened = 0
  let rows = 0
  for (const file of files) {
    const run = runDetector(file)
    scores.set(file.path, run.scores)
    for (const [k, v] of Object.entries(run.hits)) kinds[k] = (kinds[k] ?? 0) + v
    opened += run.opened
    rows += file.values.length
  }
  const detectMs = performance.now() - began

  const results = scoreCorpus(files, scores, profiles, { standard: 1, reward_low_FP_rate: 1, reward_low_FN_rate: 1 })
  const written = writeResults(outRoot, DETECTOR, files, scores, profiles, results)
  const standard = results.find((r) => r.profile === 'standard')!
  const windowsHit = standard.files.reduce((s, f) => s + (f.tp > 0 ? 1 : 0), 0)

  const ours = results.map((r) => r.normalized)
  const board = [...SCOREBOARD, ['**Vigía**', ...ours] as [string, number, number, number]].sort(
    (a, b) => b[1] - a[1],
  )
  const out = [
    `NAB v1.1: ${files.length} series, ${rows.toLocaleString('en')} readings, ${standard.perfect} anomaly windows ` +
      `(${dir}). Each series fed to the detector as one sensor variable, as ingest does; ` +
      `anomaly_score = 1 on each reading that raised a statistical hit, else 0 (${(detectMs / 1000).toFixed(1)} s).`,
    '',
    `Hits: ${Object.entries(kinds)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}; ${opened} anomalies opened (auto-resolve as configured by default).`,
    '',
    table(
      ['detector', 'standard', 'reward low FP', 'reward low FN'],
      board.map(([name, ...s]) => [name, ...s.map((x) => fixed(x))]),
    ),
    '',
    table(
      [
        'profile',
        'threshold',
        'raw score',
        'normalized',
        'windows detected',
        'detections outside windows',
      ],
      results.map((r) => [
        r.profile,
        r.threshold,
        fixed(r.raw, 2),
        fixed(r.normalized),
        `${r.files.reduce((s, f) => s + (f.tp > 0 ? 1 : 0), 0)} / ${r.perfect / profiles[r.profile].tpWeight}`,
        r.files.reduce((s, f) => s + f.fp, 0),
      ]),
    ),
    '',
    "Per category (normalized between that category's null and perfect scores; artificialNoAnomaly has no window, so its raw score is the cost of its false alarms):",
    '',
    table(
      ['category', 'files', 'windows', ...PROFILE_NAMES, 'detections outside windows'],
      byCategory(standard, files, profiles.standard).map((c, k) => {
        const per = results.map((r) => byCategory(r, files, profiles[r.profile])[k]!)
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
    `Windows with at least one detection: ${windowsHit} of ${standard.perfect}. Result files: ${written}`,
  ]
  console.log(out.join('\n'))
}

await main()
