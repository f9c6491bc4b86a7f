// Writes a detector's NAB results in NAB's own layout (results/<detector>/<category>/<detector>_<name>.csv
// with timestamp,value,anomaly_score,label and the S(t) columns NAB's scorer appends, plus
// <detector>_<profile>_scores.csv), so that NAB's Python scorer can read and re-score them.
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { NabFile, ProfileResult } from './corpus'
import { PROFILE_NAMES, rowContributions, sweep, type CostMatrix, type ProfileName } from './scorer'

/** 1 for the rows inside an anomaly window (NAB's label column). */
export function labels(file: NabFile): number[] {
  return file.timestamps.map((t) => (file.windows.some(([a, b]) => t >= a && t <= b) ? 1 : 0))
}

export function writeResults(
  root: string,
  detector: string,
  files: NabFile[],
  scores: Map<string, readonly number[]>,
  profiles: Record<ProfileName, CostMatrix>,
  results: ProfileResult[],
) {
  const dir = join(root, detector)
  // NAB's files put the S(t) columns in this order.
  const order: ProfileName[] = ['reward_low_FP_rate', 'reward_low_FN_rate', 'standard']
  for (const file of files) {
    const [category, name] = file.path.split('/')
    const anomaly = scores.get(file.path)!
    const contributions = order.map((p) => {
      const cost = profiles[p]
      const threshold = results.find((r) => r.profile === p)!.threshold
      return rowContributions(
        sweep(file.timestamps, anomaly, file.windows, file.path, cost),
        threshold,
        cost,
      )
    })
    const label = labels(file)
    const lines = [`timestamp,value,anomaly_score,label,${order.map((p) => `S(t)_${p}`).join(',')}`]
    for (let i = 0; i < file.stamps.length; i++)
      lines.push(
        [
          file.stamps[i],
          file.values[i],
          anomaly[i],
          label[i],
          ...contributions.map((c) => c[i]),
        ].join(','),
      )
    mkdirSync(join(dir, category!), { recursive: true })
    writeFileSync(join(dir, category!, `${detector}_${name}`), `${lines.join('\n')}\n`)
  }
  for (const profile of PROFILE_NAMES) {
    const result = results.find((r) => r.profile === profile)!
    const lines = ['Detector,Profile,File,Threshold,Score,TP,TN,FP,FN,Total_Count']
    const totals = { score: 0, tp: 0, tn: 0, fp: 0, fn: 0, total: 0 }
    for (const f of result.files) {
      lines.push(
        [
          detector,
          profile,
          f.path,
          result.threshold,
          f.score,
          f.tp,
          f.tn,
          f.fp,
          f.fn,
          f.total,
        ].join(','),
      )
      for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += f[k]
    }
    lines.push(['Totals', '', '', '', ...Object.values(totals)].join(','))
    writeFileSync(join(dir, `${detector}_${profile}_scores.csv`), `${lines.join('\n')}\n`)
  }
  return dir
}
