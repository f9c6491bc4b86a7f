// Timestamps: stored as epoch milliseconds, shown as ISO 8601 UTC with Z (no ".000" when whole seconds).
import { InvalidFieldError } from './errors'

// A batch formats the same instant thousands of times (created_at, the event's timestamp): remember the last.
let lastMs = NaN
let lastText = ''

export function iso(ms: number | Date): string {
  const value = typeof ms === 'number' ? ms : ms.getTime()
  if (value === lastMs) return lastText
  const text = new Date(value).toISOString()
  lastMs = value
  lastText = text.endsWith('.000Z') ? `${text.slice(0, -5)}Z` : text
  return lastText
}

/** ISO 8601 date-time; a zone is optional (taken as UTC when absent). */
export const ISO_DATE_TIME =
  '^\\d{4}-\\d{2}-\\d{2}[T ]\\d{2}:\\d{2}(:\\d{2}(\\.\\d{1,9})?)?(Z|z|[+-]\\d{2}:?\\d{2})?$'
const ISO_RE = new RegExp(ISO_DATE_TIME)

/** Epoch ms of an ISO 8601 text, or undefined when it is not a real instant. */
export function parseIso(text: string): number | undefined {
  if (!ISO_RE.test(text)) return undefined
  let normalized = text.replace(' ', 'T')
  if (!/(Z|z|[+-]\d{2}:?\d{2})$/.test(normalized)) normalized += 'Z'
  // Trim sub-millisecond digits, which Date.parse rejects on some inputs.
  normalized = normalized.replace(/(\.\d{3})\d+/, '$1')
  const ms = Date.parse(normalized)
  if (Number.isNaN(ms)) return undefined
  // Reject roll-overs such as February 30th, which Date.parse silently accepts.
  const [, y, mo, d] = /^(\d{4})-(\d{2})-(\d{2})/.exec(normalized) ?? []
  const day = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)))
  if (day.getUTCMonth() !== Number(mo) - 1 || day.getUTCDate() !== Number(d)) return undefined
  return ms
}

/** Epoch ms of a client's ISO 8601 text; a 422 naming `field` when it is not a real instant. */
export function instant(text: string, field: string): number {
  const ms = parseIso(text)
  if (ms === undefined)
    throw new InvalidFieldError(
      field,
      `${field} "${text}" is not a real date-time; use ISO 8601 such as 2025-07-20T10:30:00Z.`,
    )
  return ms
}
