// Vigía's detector over one NAB series, fed the way the ingest path feeds it (src/modules/anomalies/
// detection.ts): one sensor variable, readings in time order, no threshold rule, the production options,
// and the state persisted as JSON and revived between batches. One anomaly score per row.
import { loadConfig } from '../../src/config'
import { detectorOptions, step } from '../../src/intelligence/detector'
import { newState, reviveState, type VariableState } from '../../src/intelligence/state'
import type { NabFile } from './corpus'

/** Readings per simulated ingest batch: the state goes through JSON between batches, as it is stored. */
const BATCH = 1000

export interface DetectorRun {
  /** Per reading: the statistical hit's score (0.5 at its rule's limit, towards 1 beyond), else 0. A hit
   *  opens an anomaly or adds to the open one, so score ≥ 0.5 is exactly what production raises. */
  scores: number[]
  /** The same, only where the hit opened an anomaly (what an operator is notified of). */
  opens: number[]
  /** Hits per kind, and how many of them opened an anomaly (none was open for the variable). */
  hits: Record<string, number>
  opened: number
}

export function runDetector(file: NabFile, variable = 'value'): DetectorRun {
  const { warmupReadings, autoResolveReadings } = loadConfig({}).intelligence
  const options = detectorOptions(variable, warmupReadings)
  let state: VariableState = newState()
  const scores: number[] = []
  const opens: number[] = []
  const hits: Record<string, number> = {}
  let open = false
  let opened = 0
  for (let i = 0; i < file.values.length; i++) {
    if (i % BATCH === 0) state = reviveState(JSON.parse(JSON.stringify(state)))
    const found = step(state, file.timestamps[i]!, file.values[i]!, null, options)
    const hit = found.find((h) => h.rule === 'statistical')
    scores.push(hit ? hit.score : 0)
    opens.push(hit && !open ? hit.score : 0)
    if (hit) {
      hits[hit.kind] = (hits[hit.kind] ?? 0) + 1
      if (!open) opened += 1
      open = true
    } else if (autoResolveReadings > 0 && state.normal.statistical >= autoResolveReadings)
      open = false
  }
  return { scores, opens, hits, opened }
}
