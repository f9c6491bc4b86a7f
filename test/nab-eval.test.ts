// What `bun run eval:nab` produces: the detector fed as ingest feeds it, and result files in NAB's own
// layout that read back to the same scores. Reads the corpus from NAB_DIR or /work/shared/nab.
import { afterAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { detectorOptions, step } from '../src/intelligence/detector'
import { newState } from '../src/intelligence/state'
import {
  loadCorpus,
  loadProfiles,
  nabDir,
  readResultScores,
  scoreCorpus,
} from '../scripts/nab/corpus'
import { runDetector } from '../scripts/nab/detect'
import { labels, writeResults } from '../scripts/nab/results'
import { tempDir } from './helpers'

setDefaultTimeout(60_000)

const dir = nabDir()
const files = loadCorpus(dir).filter((f) =>
  [
    'artificialWithAnomaly/art_daily_jumpsup.csv',
    'realAdExchange/exchange-2_cpc_results.csv',
    'realKnownCause/ec2_request_latency_system_failure.csv',
  ].includes(f.path),
)
const out = tempDir()
afterAll(() => rmSync(out, { recursive: true, force: true }))

describe('eval:nab', () => {
  test('feeds each series as ingest does: a state stored as JSON between batches changes nothing', () => {
    for (const file of files) {
      const state = newState()
      const options = detectorOptions(undefined, 30)
      const straight = file.values.map((x, i) => {
        const hit = step(state, file.timestamps[i]!, x, null, options).find(
          (h) => h.rule === 'statistical',
        )
        return hit ? hit.score : 0
      })
      const run = runDetector(file)
      expect(run.scores).toEqual(straight)
      expect(run.scores.some((s) => s >= 0.5)).toBe(true)
    }
  })

  test('writes result files in NAB’s layout that read back to the same scores', () => {
    const profiles = loadProfiles(dir)
    const scores = new Map(files.map((f) => [f.path, runDetector(f).scores]))
    const results = scoreCorpus(files, scores, profiles)
    // Into <out>/results/vigia, where NAB keeps a detector's results (and readResultScores looks).
    const written = writeResults(join(out, 'results'), 'vigia', files, scores, profiles, results)
    expect(written).toBe(join(out, 'results', 'vigia'))

    const file = files[0]!
    const [category, name] = file.path.split('/')
    const text = readFileSync(join(written, category!, `vigia_${name}`), 'utf8')
      .trim()
      .split('\n')
    expect(text[0]).toBe(
      'timestamp,value,anomaly_score,label,S(t)_reward_low_FP_rate,S(t)_reward_low_FN_rate,S(t)_standard',
    )
    expect(text).toHaveLength(file.values.length + 1)
    expect(text[1]!.split(',').slice(0, 2)).toEqual([file.stamps[0], String(file.values[0])])
    expect(text.slice(1).map((line) => Number(line.split(',')[3]))).toEqual(labels(file))

    const reread = readResultScores(out, 'vigia', files)
    expect(scoreCorpus(files, reread, profiles)).toEqual(results)
    const totals = readFileSync(join(written, 'vigia_standard_scores.csv'), 'utf8')
      .trim()
      .split('\n')
    expect(totals.at(-1)!.startsWith('Totals,')).toBe(true)
    expect(Number(totals.at(-1)!.split(',')[4])).toBeCloseTo(results[0]!.raw, 9)
  })
})
