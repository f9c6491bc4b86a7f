// Spikes that keep coming back inside one lasting episode: the first time spikes come back after two
// episode gaps without one, it is news (a new condition inside the old one: detector.ts grades a kind
// coming back as an onset, without the likelihood). When they come back again, no more severe than the
// episode has been (a more severe spike is the episode getting worse, graded as such), they are the
// episode's own pattern: a flapping service, a sensor that keeps glitching while the fault lasts. From
// the second return on, such a spike weighs nothing (grade.ts `weightOf`: score 0.5, the floor); it is
// still a hit. It never decides whether a hit is raised.
import type { Kind } from './detector'
import type { VariableState } from './state'

/** Returns of spikes an episode has had before the next one is its pattern. */
export const PATTERN_RETURNS = 1

/** Counts a kind coming back inside the episode; whether it is a spike that has come back before. */
export function patternReturn(ep: VariableState['episode'], kind: Kind): boolean {
  if (kind !== 'spike') return false
  const before = ep.returns ?? 0
  ep.returns = before + 1
  return before >= PATTERN_RETURNS
}
