// Detector states stored without their keys (PostgreSQL): a packed state reads back as the very state it
// was, fields the shape does not know and fields a state lacks included; a state of an unknown shape
// starts afresh; and the shape's id changes only together with the list of shapes that can be read.
import { describe, expect, test } from 'bun:test'
import { grownStates } from '../bench/lib/grown-states'
import { fleetStart } from '../bench/lib/fleet'
import { revive } from '../src/intelligence'
import { packState, SHAPE_ID, unpackState } from '../src/intelligence/packed'
import { newState } from '../src/intelligence/state'

/** Through the database: JSON text and back. */
const stored = (x: unknown) => JSON.parse(JSON.stringify(x))

describe('packed detector states', () => {
  test('a grown state reads back as the same JSON; without its season it is a quarter shorter or more', () => {
    const states = grownStates(17, 4, fleetStart(2), 5)
    expect(states.length).toBe(20)
    for (const { state } of states) {
      const packed = JSON.stringify(packState(state))
      expect(JSON.stringify(unpackState(JSON.parse(packed)))).toBe(JSON.stringify(state))
      // As PostgreSQL's rows hold them: the season's places written as 0, then put back by revive().
      const row = { ...state, profile: { ...state.profile, m: 0 }, envelope: 0 }
      expect(JSON.stringify(packState(row)).length).toBeLessThan(JSON.stringify(row).length * 0.75)
      const season = { m: state.profile.m, envelope: state.envelope }
      const viaPacked = revive({ state: stored(packState(row)), season: stored(season) })
      expect(JSON.stringify(viaPacked)).toBe(JSON.stringify(revive({ state: stored(state) })))
    }
  })

  test('nulls, absent optional fields and fields the shape does not know come back as they were', () => {
    const state = newState() as unknown as Record<string, unknown> & {
      episode: Record<string, unknown>
      stuck: Record<string, unknown>
    }
    delete state.episode.at
    state.episode.extra = { deep: [1, 2] }
    state.stuck.value = null
    state.added = 'later field'
    const back = unpackState(stored(packState(state))) as typeof state
    expect(back).toEqual(state)
    expect(Object.hasOwn(back.episode, 'at')).toBe(false)
    expect(Object.hasOwn(back.episode, 'start')).toBe(false)
    expect(back.stuck.value).toBeNull()
  })

  test('a state stored as an object (before packing, or on SQLite) is read as it is', () => {
    const state = stored(newState())
    expect(unpackState(state)).toBe(state)
  })

  test('an array where the shape has an object is stored as the object itself', () => {
    const state = { ...newState(), lik: [1, 2, 3] }
    expect(packState(state)).toBe(state)
  })

  test('a state packed in a shape this version does not know starts afresh', () => {
    const packed = stored(packState({ ...newState(), n: 500 })) as unknown[]
    packed[0] = 'another-shape'
    expect(unpackState(packed)).toBeNull()
    expect(revive({ state: packed }).n).toBe(0)
  })

  test('the shape is the one stored states were packed in', () => {
    // When this fails, the detector state's fields changed: states already stored were packed in the old
    // shape. Add the old shape to SHAPES in src/intelligence/packed.ts under its id, then update this id.
    expect(SHAPE_ID).toBe('EIwKAZ1SSEeg')
  })
})
