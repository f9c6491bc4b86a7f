// Frame batches between instances (src/realtime/cluster.ts): what decoding gives back, and the epoch and
// last seq read from a batch's two ends, which let an instance drop a batch it has already published.
import { expect, test } from 'bun:test'
import { batchEnds, decodeFrames, encodeFrames } from '../src/realtime/cluster'

const EPOCH = '0b6c2f9e-5d7a-4c1e-9f3b-2a8d6e4c1b70'
const frames = [
  {
    seq: 41,
    channels: 'readings|sensor:3',
    payload: '{"type":"entity_event","seq":41,"data":{"v":"a|b"}}',
  },
  { seq: 42, channels: 'readings', payload: '{"type":"entity_event","seq":42,"data":{"ñ":"€"}}' },
  { seq: 1043, channels: 'anomalies|sensor:3', payload: '{"type":"entity_event","seq":1043}' },
]

test('a batch decodes to the frames it was made of', () => {
  expect(decodeFrames(encodeFrames(EPOCH, frames))).toEqual({ epoch: EPOCH, frames })
})

test("a batch's epoch and last seq are read from its ends, whatever its payloads hold", () => {
  expect(batchEnds(Buffer.from(encodeFrames(EPOCH, frames)))).toEqual({
    epoch: EPOCH,
    lastSeq: 1043,
  })
  expect(batchEnds(Buffer.from(encodeFrames(EPOCH, frames.slice(0, 1))))).toEqual({
    epoch: EPOCH,
    lastSeq: 41,
  })
})

test('a message not shaped as a batch has no ends, so it goes on to be decoded and refused', () => {
  for (const text of [
    '',
    EPOCH,
    `${EPOCH}\n`,
    `${EPOCH}\n5`,
    `\n\n\n`,
    `${EPOCH}\n\nreadings\n{}`,
    `${EPOCH}\nx\nreadings\n{}`,
    `${EPOCH}\n0\nreadings\n{}`,
  ]) {
    expect(batchEnds(Buffer.from(text))).toBeUndefined()
    expect(() => decodeFrames(text)).toThrow()
  }
})
