// Checks for bodies with parts keyed by the client (measurement names, rule names), run as an Elysia
// `transform` hook: on the body as sent, before the schema step, whose normalizer reshapes what it
// cannot mirror (11, [] or "x" become {}, an array becomes an object keyed "0") and lets names that
// break a record's key pattern through.
import { InvalidFieldError } from './errors'

/** A `transform` hook that runs `check` on the parsed body (it throws a 422 to refuse it). */
export const checkBody =
  (check: (body: unknown) => void) =>
  ({ body }: { body: unknown }) =>
    check(body)

export const isPlainObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value)

/** A 422 unless the whole body is a JSON object. */
export function requireObject(body: unknown, example: string): Record<string, unknown> {
  if (!isPlainObject(body))
    throw new InvalidFieldError(
      'body',
      `The body must be a JSON object such as ${example}, not ${JSON.stringify(body)?.slice(0, 40)}.`,
    )
  return body
}
