// Detector test kit: a day of calm synthetic temperature, one reading a minute, fed to a fresh detector.
import { detectorOptions, step } from '../src/intelligence/detector'
import { newState } from '../src/intelligence/state'
import { generate, temperatureSpec } from '../scripts/synthetic'

export const START = Date.UTC(2025, 6, 1)
export const MIN = 60_000

/** The day's readings and the detector state they left (the next reading is due at START + 1440 min). */
export function calmDay() {
  const values = generate(temperatureSpec(START, 1440), [], 5).values
  const state = newState()
  values.forEach((x, i) => step(state, START + i * MIN, x, null, detectorOptions()))
  return { values, state }
}
