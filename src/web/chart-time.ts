// Time on the dashboard's charts: the range picker's spans, the aggregate bucket that fits a range into the
// chart's width, and a 24-hour time axis whose labels never overlap (uPlot's own default is 12-hour).
import uPlot from 'uplot'

/** Spans of the range picker, in seconds. */
export const RANGES: Record<string, number> = {
  '1h': 3600,
  '24h': 86_400,
  '7d': 7 * 86_400,
  '30d': 30 * 86_400,
}

/** A relative range ends now and slides; a custom one is fixed. Times in seconds since 1970. */
export type TimeRange =
  { kind: 'relative'; span: number } | { kind: 'fixed'; from: number; to: number }

/** The window a range covers at `now` (seconds). */
export function windowOf(range: TimeRange, now = Date.now() / 1000) {
  return range.kind === 'relative'
    ? { from: now - range.span, to: now }
    : { from: range.from, to: range.to }
}

/** Bucket sizes the chart asks for, in seconds: each a multiple that reads well on a time axis. */
const NICE = [
  1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10_800, 21_600, 43_200, 86_400,
  172_800, 604_800, 2_592_000,
]

/** Pixels each bucket gets at most: a band finer than this is noise, coarser hides the shape. */
export const PX_PER_BUCKET = 3

/** The smallest nice bucket that keeps `span` seconds within `width / PX_PER_BUCKET` buckets. */
export function chooseBucket(span: number, width: number): number {
  const most = Math.max(10, Math.floor(width / PX_PER_BUCKET))
  return NICE.find((b) => span / b <= most) ?? NICE.at(-1)!
}

/** `300` → `5m`: the aggregate endpoint's `<n>s|m|h|d`. */
export function bucketParam(seconds: number): string {
  if (seconds % 86_400 === 0) return `${seconds / 86_400}d`
  if (seconds % 3600 === 0) return `${seconds / 3600}h`
  if (seconds % 60 === 0) return `${seconds / 60}m`
  return `${seconds}s`
}

/** The axis font, also used to measure the labels. */
export const AXIS_FONT = '12px system-ui, sans-serif'

const hms = uPlot.fmtDate('{HH}:{mm}:{ss}')
const hm = uPlot.fmtDate('{HH}:{mm}')
const dayMonth = uPlot.fmtDate('{DD}/{MM}')
const monthYear = uPlot.fmtDate('{MM}/{YYYY}')
const full = uPlot.fmtDate('{DD}/{MM}/{YYYY} {HH}:{mm}:{ss}')

/** Legend and tooltip value of an instant: day and 24-hour time. */
export const instantText = (seconds: number | null) =>
  seconds === null ? '—' : full(new Date(seconds * 1000))

/**
 * Tick labels in 24-hour time: seconds when ticks are under a minute apart, the day under the time where
 * the day changes (and on the first tick), day/month for daily ticks, month/year for monthly ones.
 */
export function timeLabels(splits: number[], incr: number): string[] {
  let lastDay = ''
  return splits.map((s, i) => {
    const d = new Date(s * 1000)
    if (incr >= 28 * 86_400) return monthYear(d)
    if (incr >= 86_400) return dayMonth(d)
    const day = dayMonth(d)
    const time = incr < 60 ? hms(d) : hm(d)
    const withDay = i === 0 || day !== lastDay
    lastDay = day
    return withDay ? `${time}\n${day}` : time
  })
}

/** The x axis: 24-hour labels, ticks far enough apart for the widest label ("00:00:00"). */
export function timeAxis(onLabels: (splits: number[], labels: string[]) => void): uPlot.Axis {
  return {
    font: AXIS_FONT,
    space: 80,
    size: 50,
    values: (_u, splits, _axis, _space, incr) => {
      const labels = timeLabels(splits, incr)
      onLabels(splits, labels)
      return labels
    },
  }
}

let measurer: CanvasRenderingContext2D | null | undefined

/** Where each tick label sits on the chart (CSS px from the plot's left) and how wide it is. */
export function labelBoxes(u: uPlot, splits: number[], labels: string[]) {
  measurer ??= document.createElement('canvas').getContext('2d')
  if (measurer) measurer.font = AXIS_FONT
  return splits.map((s, i) => {
    const text = labels[i] ?? ''
    const width = Math.max(
      ...text.split('\n').map((line) => measurer?.measureText(line).width ?? line.length * 7),
    )
    return { x: Math.round(u.valToPos(s, 'x')), w: Math.ceil(width), text }
  })
}
