// src/realtime/channels.ts: which names are channels, and where each event goes (CONTRACT §4).
import { describe, expect, test } from 'bun:test'
import { CHANNELS, isChannel, routeEntityEvent, routeSystemEvent } from '../src/realtime/channels'
import { parseChannels } from '../src/realtime/socket'

describe('isChannel', () => {
  test('accepts the six channels of the original', () => {
    expect([...CHANNELS].sort() as string[]).toEqual(
      ['anomalies', 'general', 'locations', 'predictions', 'readings', 'sensors'].sort(),
    )
    for (const channel of CHANNELS) expect(isChannel(channel)).toBe(true)
  })

  test('accepts a sub-channel with a positive id on the five entity channels', () => {
    for (const channel of [
      'sensors:5',
      'readings:5',
      'anomalies:5',
      'predictions:5',
      'locations:3',
      'sensors:1',
      `sensors:${Number.MAX_SAFE_INTEGER}`,
    ])
      expect(isChannel(channel)).toBe(true)
  })

  test('rejects anything else', () => {
    for (const channel of [
      '',
      'weather',
      'Sensors',
      ' sensors',
      'sensors ',
      'general:1',
      'sensors:',
      'sensors:0',
      'sensors:05',
      'sensors:-1',
      'sensors:1.5',
      'sensors:abc',
      'sensors:1:2',
      'sensors:5,readings',
      `sensors:${Number.MAX_SAFE_INTEGER + 1}`,
      'sensors:99999999999999999999',
      'constructor',
      'toString:1',
      '__proto__',
    ])
      expect({ channel, ok: isChannel(channel) }).toEqual({ channel, ok: false })
  })
})

describe('routeEntityEvent', () => {
  test('a sensor goes to sensors, its sub-channel and general', () => {
    expect(routeEntityEvent('sensor', 5).sort()).toEqual(['general', 'sensors', 'sensors:5'])
  })

  test('a location goes to locations, its sub-channel and general', () => {
    expect(routeEntityEvent('location', 3).sort()).toEqual(['general', 'locations', 'locations:3'])
  })

  test("a sensor's data goes to its kind, the kind's sub-channel of the sensor, sensors:<sensor> and general", () => {
    expect(routeEntityEvent('reading', 40, 5).sort()).toEqual(
      ['general', 'readings', 'readings:5', 'sensors:5'].sort(),
    )
    expect(routeEntityEvent('anomaly', 7, 5).sort()).toEqual(
      ['anomalies', 'anomalies:5', 'general', 'sensors:5'].sort(),
    )
    expect(routeEntityEvent('prediction', 9, 5).sort()).toEqual(
      ['general', 'predictions', 'predictions:5', 'sensors:5'].sort(),
    )
  })

  test('data with no sensor goes to its kind and general only', () => {
    expect(routeEntityEvent('reading', 40, null).sort()).toEqual(['general', 'readings'])
    expect(routeEntityEvent('anomaly', 7).sort()).toEqual(['anomalies', 'general'])
  })

  test('every channel it names is a valid channel', () => {
    for (const channels of [
      routeEntityEvent('sensor', 1),
      routeEntityEvent('location', 1),
      routeEntityEvent('reading', 1, 2),
      routeEntityEvent('anomaly', 1, 2),
      routeEntityEvent('prediction', 1, 2),
    ])
      for (const channel of channels) expect(isChannel(channel)).toBe(true)
  })
})

describe('routeSystemEvent', () => {
  test('goes to general, and to the named channel besides', () => {
    expect(routeSystemEvent()).toEqual(['general'])
    expect(routeSystemEvent('general')).toEqual(['general'])
    expect(routeSystemEvent('sensors:5').sort()).toEqual(['general', 'sensors:5'])
  })
})

describe('parseChannels (the channel query parameter)', () => {
  test('defaults to general', () => {
    expect(parseChannels(undefined)).toEqual({ channels: ['general'] })
    expect(parseChannels('')).toEqual({ channels: ['general'] })
    expect(parseChannels(' , ')).toEqual({ channels: ['general'] })
  })

  test('splits on commas, trims, and drops repeats', () => {
    expect(parseChannels('sensors, readings:5 ,sensors')).toEqual({
      channels: ['sensors', 'readings:5'],
    })
  })

  test('names the first unknown channel, in a reason short enough for a close frame', () => {
    const result = parseChannels(`sensors,${'x'.repeat(500)}`)
    expect('error' in result && result.error).toContain('Unknown channel "xxx')
    expect(
      new TextEncoder().encode((result as { error: string }).error).length,
    ).toBeLessThanOrEqual(123)
  })
})
