// Detector states without their keys, as PostgreSQL stores them: each object of a state becomes the array of
// its values in the order of a fresh state's keys (its shape), so a grown state of about 1.7 KB of JSON is
// written as about 1.2 KB. The shape's id goes first, and every shape a stored state may have is kept here.
import { createHash } from 'node:crypto'
import { isPlainObject } from '../lib/json-body'
import { newState } from './state'

/** An object's keys in order, each with the shape of its value when that is an object itself. */
type Shape = readonly (readonly [key: string, shape: Shape | null])[]

const shapeOf = (o: Record<string, unknown>): Shape =>
  Object.keys(o).map((key) => [key, isPlainObject(o[key]) ? shapeOf(o[key]) : null] as const)

/** A fresh state with every optional field present: its keys are the positions. */
function template() {
  const state = newState()
  return { ...state, episode: { ...state.episode, start: 0, returns: 0 } }
}

const SHAPE = shapeOf(template())
/**
 * The current shape's id: a state packed in another shape is read with that shape (SHAPES). SHA-256, whose
 * value no runtime upgrade changes (stored states outlive the process that wrote them).
 */
export const SHAPE_ID = createHash('sha256')
  .update(JSON.stringify(SHAPE))
  .digest('base64url')
  .slice(0, 12)

/**
 * Every shape a stored state may have been packed in. When a change to the state's fields changes SHAPE_ID,
 * the previous shape is added here (`test/packed-state.test.ts` says so), so states stored before the
 * upgrade are still read, each key back in its place; reviveState() fills in fields they lack.
 */
const SHAPES = new Map<string, Shape>([[SHAPE_ID, SHAPE]])

/**
 * A key of the shape the object does not have (null is a value; this is absence). No field of a state
 * holds this string, and PostgreSQL's text takes it (it refuses U+0000).
 */
const ABSENT = '~'

/** Not packable: an array where the shape has an object. */
class Unpackable extends Error {}

function packObject(shape: Shape, o: Record<string, unknown>, out: unknown[]) {
  let present = 0
  for (const [key, sub] of shape) {
    if (!Object.hasOwn(o, key)) {
      out.push(ABSENT)
      continue
    }
    present += 1
    const value = o[key]
    if (sub && Array.isArray(value)) throw new Unpackable(key)
    out.push(sub && isPlainObject(value) ? packObject(sub, value, []) : value)
  }
  // Keys the shape does not know (a field added without a new shape) are kept by name, last.
  if (Object.keys(o).length > present) {
    const known = new Set(shape.map(([key]) => key))
    const extra: Record<string, unknown> = {}
    for (const key in o) if (!known.has(key)) extra[key] = o[key]
    out.push(extra)
  }
  return out
}

function unpackObject(shape: Shape, packed: readonly unknown[], from: number) {
  const o: Record<string, unknown> = {}
  for (let i = 0; i < shape.length; i++) {
    const value = packed[from + i]
    if (value === ABSENT) continue
    const [key, sub] = shape[i]!
    o[key] = sub && Array.isArray(value) ? unpackObject(sub, value, 0) : value
  }
  if (packed.length > from + shape.length) Object.assign(o, packed[from + shape.length])
  return o
}

/** The state as stored: its shape's id then its values; the state itself when it cannot be packed. */
export function packState(state: object): unknown {
  try {
    return packObject(SHAPE, state as Record<string, unknown>, [SHAPE_ID])
  } catch (error) {
    if (error instanceof Unpackable) return state
    throw error
  }
}

/** A stored state as an object: packed ones unpacked (null for an unknown shape), others as they are. */
export function unpackState(stored: unknown): unknown {
  if (!Array.isArray(stored)) return stored
  const shape = SHAPES.get(stored[0] as string)
  return shape ? unpackObject(shape, stored, 1) : null
}
