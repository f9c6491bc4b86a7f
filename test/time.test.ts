// src/lib/time.ts: how instants are shown (ISO 8601 UTC with Z) and which texts are real instants.
import { describe, expect, test } from 'bun:test'
import { iso, parseIso } from '../src/lib/time'

describe('iso', () => {
  test('writes what toISOString writes (without .000) for any instant, in any order', () => {
    const reference = (ms: number) => new Date(ms).toISOString().replace('.000Z', 'Z')
    const instants = [0, 999, 59_999, 60_000, -1, -62_198_755_200_000, 253_402_300_800_000, 8.64e15]
    for (let i = 0; i < 20_000; i++) instants.push(Math.floor(Math.random() * 4e12))
    for (const ms of instants) expect(iso(ms)).toBe(reference(ms))
  })
  test('shows whole seconds without milliseconds', () => {
    expect(iso(Date.UTC(2025, 6, 20, 10, 30))).toBe('2025-07-20T10:30:00Z')
    expect(iso(0)).toBe('1970-01-01T00:00:00Z')
  })

  test('keeps milliseconds when there are any', () => {
    expect(iso(Date.UTC(2025, 6, 20, 10, 30, 0, 5))).toBe('2025-07-20T10:30:00.005Z')
    expect(iso(Date.UTC(2025, 6, 20, 10, 30, 0, 120))).toBe('2025-07-20T10:30:00.120Z')
  })

  test('takes a Date as well as epoch milliseconds', () => {
    expect(iso(new Date('2025-07-20T10:30:00.250Z'))).toBe('2025-07-20T10:30:00.250Z')
  })
})

describe('parseIso', () => {
  const at = (text: string) => Date.parse(text)

  test('reads the original timestamp format', () => {
    expect(parseIso('2025-07-20T10:30:00Z')).toBe(at('2025-07-20T10:30:00Z'))
  })

  test('reads offsets with and without a colon, and a lowercase z', () => {
    expect(parseIso('2025-07-20T12:30:00+02:00')).toBe(at('2025-07-20T10:30:00Z'))
    expect(parseIso('2025-07-20T12:30:00+0200')).toBe(at('2025-07-20T10:30:00Z'))
    expect(parseIso('2025-07-20T05:30:00-05:00')).toBe(at('2025-07-20T10:30:00Z'))
    expect(parseIso('2025-07-20T10:30:00z')).toBe(at('2025-07-20T10:30:00Z'))
  })

  test('takes a time without a zone as UTC', () => {
    expect(parseIso('2025-07-20T10:30:00')).toBe(at('2025-07-20T10:30:00Z'))
  })

  test('accepts a space for T and a time without seconds', () => {
    expect(parseIso('2025-07-20 10:30:00Z')).toBe(at('2025-07-20T10:30:00Z'))
    expect(parseIso('2025-07-20T10:30Z')).toBe(at('2025-07-20T10:30:00Z'))
  })

  test('keeps milliseconds and drops finer digits', () => {
    expect(parseIso('2025-07-20T10:30:00.5Z')).toBe(at('2025-07-20T10:30:00.500Z'))
    expect(parseIso('2025-07-20T10:30:00.123456789Z')).toBe(at('2025-07-20T10:30:00.123Z'))
  })

  test('accepts February 29th only in leap years', () => {
    expect(parseIso('2024-02-29T00:00:00Z')).toBe(at('2024-02-29T00:00:00Z'))
    expect(parseIso('2000-02-29T00:00:00Z')).toBe(at('2000-02-29T00:00:00Z'))
    expect(parseIso('2025-02-29T00:00:00Z')).toBeUndefined()
    expect(parseIso('1900-02-29T00:00:00Z')).toBeUndefined()
  })

  test('reads what toISOString writes, with and without milliseconds, as Date.parse does', () => {
    // Years 1000-9999, every month's last days and leap days among them.
    const from = Date.UTC(1000, 0, 1)
    const span = Date.UTC(9999, 11, 31, 23, 59, 59, 999) - from
    const instants = [Date.UTC(2024, 1, 29, 23, 59, 59, 999), Date.UTC(2000, 1, 29), from]
    for (let i = 0; i < 20_000; i++) instants.push(from + Math.floor(Math.random() * span))
    for (const ms of instants) {
      const text = new Date(ms).toISOString()
      const whole = `${text.slice(0, 19)}Z`
      expect(parseIso(text)).toBe(ms)
      expect(parseIso(whole)).toBe(Date.parse(whole))
    }
  })

  test('rejects dates that would roll over into the next month', () => {
    for (const text of [
      '2025-02-30T00:00:00Z',
      '2024-02-30T00:00:00Z',
      '2025-04-31T00:00:00Z',
      '2025-04-31T00:00:00.000Z',
      '2025-06-31T12:00:00+02:00',
      '2025-01-32T00:00:00Z',
    ])
      expect(parseIso(text)).toBeUndefined()
  })

  test('rejects months, days, hours and minutes out of range', () => {
    for (const text of [
      '2025-13-01T00:00:00Z',
      '2025-00-01T00:00:00Z',
      '2025-07-00T00:00:00Z',
      '2025-07-20T25:00:00Z',
      '2025-07-20T10:60:00Z',
      '2025-07-20T10:30:61Z',
      '2025-07-20T10:30:00+99:00',
    ])
      expect(parseIso(text)).toBeUndefined()
  })

  test('rejects text that is not an ISO 8601 date-time', () => {
    for (const text of [
      '',
      'yesterday',
      '2025-07-20',
      '20/07/2025 10:30',
      '2025-7-20T10:30:00Z',
      '2025-07-20T10:30:00Z trailing',
      ' 2025-07-20T10:30:00Z',
      '2025-07-20T10:30:00 UTC',
      '+275760-09-13T00:00:00Z',
      '1753007400',
    ])
      expect(parseIso(text)).toBeUndefined()
  })
})
