// The detector's options (detector.ts): what each one sets, and the defaults every variable gets.

export interface DetectorOptions {
  /** Readings seen before the statistical detector may raise anything. */
  warmup: number
  /** Readings in the rolling window that gives the local level and slope. */
  window: number
  /** Smoothing of the residual bias and scale (per reading). */
  scaleAlpha: number
  /** Each limit is at least this many times the 99th percentile of its statistic in calm times
   *  (1.9 × a Gaussian's 2.58 ≈ 5: no change on Gaussian noise, far higher on bursty series)… */
  tailTimes: number
  /** …and the slowest step of those percentiles (they move faster while they have seen little). */
  tailRate: number
  /** Floors of the spike (robust σ) and drift (chart σ) limits. */
  spikeZ: number
  driftK: number
  /** Shortest run of identical values that can be a stuck sensor. */
  stuckRun: number
  /** How unlikely (under the sensor's own rate of repeated values) a run must be to count. */
  stuckProbability: number
  /** A run must also be this many times the longest run the sensor has had in calm times. */
  stuckMargin: number
  /** Time constants (ms) of the drift chart, of the residual mean it is compared with, and of its variance. */
  driftChartTau: number
  driftMeanTau: number
  driftVarTau: number
  /** Bins of the daily profile, and how much one day moves a bin. */
  profileBins: number
  profileDayAlpha: number
  /** Daily envelope rule: days an hour needs, and how far past its envelope (in its widths) counts. */
  envelopeDays: number
  envelopeTolerance: number
  /** Readings without a statistical finding that end an episode: the next finding is a new onset. */
  episodeGap: number
  /** Standard deviations of the recent error's long run past its mean that are a finding on their own,
   *  and the higher limit that holds until the multi-day level has taken `youngDays` daily means: the
   *  first days' errors come from a daily profile learned from one or two days, which bakes those days'
   *  weather into its shape (a warm third night after two cool ones reads as error, session 16). */
  unlikelyZ: number
  unlikelyYoungZ: number
  youngDays: number
  /** Readings after which an episode's drift is taken as the series' new level (longer than any
   *  synthetic drift: eval:intelligence's figures are unchanged from here on). */
  settle: number
}

const MINUTE = 60_000
const HOUR = 60 * MINUTE

/**
 * Defaults chosen on the synthetic series of `bun run eval:intelligence` and NAB's artificial series;
 * the same for every variable (the name is accepted so callers need not change).
 */
export function detectorOptions(_variable?: string, warmup = 30): DetectorOptions {
  return {
    warmup,
    window: 15,
    scaleAlpha: 0.02,
    tailRate: 0.02,
    tailTimes: 1.6,
    spikeZ: 5,
    driftK: 5,
    stuckRun: 10,
    stuckProbability: 1e-6,
    stuckMargin: 1.5,
    driftChartTau: 15 * MINUTE,
    driftMeanTau: 2 * HOUR,
    driftVarTau: 12 * HOUR,
    profileBins: 48,
    profileDayAlpha: 0.5,
    envelopeDays: 7,
    envelopeTolerance: 1,
    episodeGap: 30,
    unlikelyZ: 4.65,
    unlikelyYoungZ: 5,
    youngDays: 3,
    settle: 300,
  }
}
