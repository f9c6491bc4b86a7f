// How PostgreSQL stores a detector state: `season` (the daily profile's means and the envelope, about half
// of a grown state, changed a few times an hour) apart and written only when it changed, and `state`, the
// rest, without its keys (packed.ts).
import { packState, unpackState } from './packed'
import { reviveState, type VariableState } from './state'

/**
 * Serializing whole states was a sixth of the server's samples on single POSTs and most of the bytes
 * their transactions sent; a row whose `season` is null holds its whole state in `state` (as SQLite's
 * always do).
 */
export interface Season {
  m: VariableState['profile']['m']
  envelope: VariableState['envelope']
}

/** What is written every time: the state with 0 in its season's places (so revived, its keys keep their order). */
export const packedWithoutSeason = (s: VariableState) =>
  packState({ ...s, profile: { ...s.profile, m: 0 }, envelope: 0 })

export const seasonOf = (s: VariableState): Season => ({
  m: [...s.profile.m],
  envelope: {
    lo: [...s.envelope.lo],
    hi: [...s.envelope.hi],
    days: [...s.envelope.days],
    last: [...s.envelope.last],
  },
})

function same(a: readonly unknown[], b: readonly unknown[]) {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

export const unchanged = (s: VariableState, k: Season) =>
  same(s.profile.m, k.m) &&
  same(s.envelope.lo, k.envelope.lo) &&
  same(s.envelope.hi, k.envelope.hi) &&
  same(s.envelope.days, k.envelope.days) &&
  same(s.envelope.last, k.envelope.last)

/**
 * A stored row as one state: unpacked when PostgreSQL stored it without its keys (packed.ts), its season
 * put back into its places when it was stored apart.
 */
export function revive(row: { state: unknown; season?: unknown }): VariableState {
  const season = row.season as Season | null | undefined
  const state = unpackState(row.state) as VariableState | null
  if (season && state?.profile) {
    state.profile.m = season.m
    state.envelope = season.envelope
  }
  return reviveState(state)
}
