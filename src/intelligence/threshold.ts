// Threshold rules for one sensor variable (min, max, and how long a breach must last before it is a hit):
// the detector's rule that needs no learning; its breach count lives in the variable's state.
import type { Hit, Severity, ThresholdRule } from './detector'
import type { VariableState } from './state'

function thresholdSeverity(excess: number, rule: ThresholdRule): Severity {
  const width =
    rule.min != null && rule.max != null
      ? rule.max - rule.min
      : Math.max(Math.abs((rule.max ?? rule.min)!), 1)
  const ratio = excess / width
  return ratio >= 0.5 ? 'critical' : ratio >= 0.1 ? 'major' : 'minor'
}

/** A threshold rule's hit for this reading, once its breach has lasted as long as the rule asks. */
export function checkThreshold(
  state: VariableState,
  t: number,
  x: number,
  rule: ThresholdRule | null,
) {
  const above = rule?.max != null && x > rule.max
  const below = rule?.min != null && x < rule.min
  if (!rule || (!above && !below)) {
    // Kept when already clear: a fresh object every reading is garbage to collect.
    if (state.breach.n !== 0 || state.breach.since !== null) state.breach = { n: 0, since: null }
    state.normal.threshold += 1
    return undefined
  }
  state.normal.threshold = 0
  state.breach.n += 1
  state.breach.since ??= t
  const forReadings = rule.for_readings ?? 1
  const forMs = (rule.for_seconds ?? 0) * 1000
  if (state.breach.n < forReadings || t - state.breach.since < forMs) return undefined
  const bound = above ? rule.max! : rule.min!
  const lasting =
    forReadings > 1 || forMs > 0
      ? ` for ${state.breach.n} readings (${Math.round((t - state.breach.since) / 1000)} s)`
      : ''
  const hit: Hit = {
    rule: 'threshold',
    kind: above ? 'above_max' : 'below_min',
    severity: thresholdSeverity(Math.abs(x - bound), rule),
    value: x,
    expected_min: rule.min ?? null,
    expected_max: rule.max ?? null,
    message: `${x} is ${above ? 'above the maximum' : 'below the minimum'} ${bound}${lasting}.`,
    score: 1,
  }
  return hit
}
