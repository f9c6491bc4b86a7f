// Latency histograms (HdrHistogram, microseconds) that travel between processes as compressed base64.
import * as hdr from 'hdr-histogram-js'

export type Histogram = hdr.Histogram

export const newHistogram = (): Histogram =>
  hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 600_000_000,
    numberOfSignificantValueDigits: 3,
  })

export const encode = (h: Histogram) => hdr.encodeIntoCompressedBase64(h)

export function merge(encoded: string[]): Histogram {
  const total = newHistogram()
  for (const text of encoded) {
    const part = hdr.decodeFromCompressedBase64(text)
    total.add(part)
    part.destroy()
  }
  return total
}

export interface Latency {
  count: number
  p50: number
  p99: number
  max: number
}

/** p50 / p99 / max in milliseconds. */
export function summarize(h: Histogram): Latency {
  return {
    count: h.totalCount,
    p50: h.getValueAtPercentile(50) / 1000,
    p99: h.getValueAtPercentile(99) / 1000,
    max: h.maxValue / 1000,
  }
}
