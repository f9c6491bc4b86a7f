// The detector's state for one sensor variable (a plain JSON object, stored as is): its shape, a fresh one,
// and one read back from storage.
import type { Kind, Rule, Severity } from './detector'
import { newContext, type Context } from './context'
import { newDays, reviveDays, type Days } from './days'
import type { Routine } from './routine'
import { newEnvelope, newProfile, type Envelope, type Profile } from './season'
import { newLikelihood, newTail, type Likelihood, type Tail } from './tail'

export interface VariableState {
  v: 3
  /** Readings checked so far. */
  n: number
  /** Timestamp (ms) of the last reading checked; older ones are stored but not checked. */
  last: number | null
  /** The previous value, and the smallest change between two readings (the sensor's resolution). */
  prev: number | null
  res: number | null
  /** The rolling window: times and values (spikes enter clipped). */
  ts: number[]
  xs: number[]
  /** Residual bias and mean absolute deviation around it, and how many residuals fed them. */
  bias: number
  mad: number
  k: number
  /** Tail of the spike statistic |z|. */
  spike: Tail
  /** Current run of one value, the sensor's rate of repeats, and its longest calm run (decaying). */
  stuck: { value: number | null; run: number; p0: number; k: number; longest: number }
  profile: Profile
  /** EWMA chart of the profile residual, its slow mean and spread, the tail of |chart| / spread and
   *  when that tail last took a value. */
  drift: { e: number; mean: number; mad: number; k: number; tail: Tail; sampled: number }
  /** Lowest and highest reading per hour of day. */
  envelope: Envelope
  /** The statistical episode under way: its worst severity (null: none), the kinds it has shown, and
   *  readings since its last finding; `at` is the reading that last showed each kind and `start` the
   *  one that opened it (added within v3, optional: a state stored without them dates them from the
   *  next finding); `returns` counts the times spikes came back inside it (returns.ts; absent: none). */
  episode: {
    severity: Severity | null
    kinds: Kind[]
    quiet: number
    at?: number[]
    start?: number
    returns?: number
  }
  /** Episode onsets per reading, decaying over about 5,000 readings: how rare a finding is on this
   *  variable, which grades the hits' scores (added within v3; a state stored without it starts at 0). */
  onsets: number
  /** The strongest finding's r / (1 + r) lately, decaying over about 1,000 readings (added within v3). */
  peak: number
  /** Anomaly likelihood of the bounded error (tail.ts), which grades hits (added within v3; a state
   *  stored without it starts afresh). */
  lik: Likelihood
  /** The reading at which the last step the daily profile foresaw came (added within v3; null: none). */
  stepAt: number | null
  /** The range seen so far and the contexts (level pairs) the variable has been in (context.ts; added
   *  within v3: a state stored without it starts afresh, every context new). */
  ctx: Context
  /** The last day's readings and the earlier days' means (days.ts; added within v3: a state stored
   *  without it starts afresh). */
  days: Days
  /** Spike onsets of the last days, time and value (routine.ts; added within v3: a state stored without
   *  it starts empty). */
  spikes: Routine
  breach: { n: number; since: number | null }
  /** Consecutive readings with no finding, per rule (auto-resolve counts on these). */
  normal: Record<Rule, number>
}

export function newState(bins = 48): VariableState {
  return {
    v: 3,
    n: 0,
    last: null,
    prev: null,
    res: null,
    ts: [],
    xs: [],
    bias: 0,
    mad: 0,
    k: 0,
    spike: newTail(),
    stuck: { value: null, run: 0, p0: 0, k: 0, longest: 0 },
    profile: newProfile(bins),
    drift: { e: 0, mean: 0, mad: 0, k: 0, tail: newTail(), sampled: 0 },
    envelope: newEnvelope(),
    episode: { severity: null, kinds: [], quiet: 0, at: [] },
    onsets: 0,
    peak: 0,
    lik: newLikelihood(),
    stepAt: null,
    ctx: newContext(),
    days: newDays(),
    spikes: [],
    breach: { n: 0, since: null },
    normal: { threshold: 0, statistical: 0 },
  }
}

/** A stored state, or a fresh one when it is missing or of another shape (older versions restart). */
export function reviveState(raw: unknown, bins = 48): VariableState {
  const state = raw as VariableState | null
  if (!state || state.v !== 3 || state.profile?.m?.length !== bins) return newState(bins)
  state.onsets ??= 0
  state.peak ??= 0
  state.lik ??= newLikelihood()
  state.stepAt ??= null
  state.ctx ??= newContext()
  state.days = state.days ? reviveDays(state.days) : newDays()
  state.spikes ??= []
  return state
}
