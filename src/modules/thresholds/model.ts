// Threshold rule schemas: min/max per variable, optionally held for N readings or D seconds.
import { t } from 'elysia'
import { BodyInt, Text } from '../../lib/schemas'
import { VARIABLE_NAME } from '../variables/model'

/** The most variables one rule set may name. */
export const MAX_RULES = 100

const Bound = t.Optional(t.Nullable(t.Number({ minimum: -1e6, maximum: 1e6 })))

export const ThresholdRule = t.Object(
  {
    min: Bound,
    max: Bound,
    for_readings: t.Optional(
      BodyInt({
        minimum: 1,
        maximum: 100_000,
        description: 'Raise only after this many consecutive readings out of range (default 1)',
      }),
    ),
    for_seconds: t.Optional(
      BodyInt({
        minimum: 0,
        maximum: 604_800,
        description: 'Raise only once the breach has lasted this many seconds (default 0)',
      }),
    ),
  },
  { examples: [{ min: 0, max: 40, for_readings: 3 }] },
)
export type ThresholdRule = typeof ThresholdRule.static

export const Thresholds = t.Record(t.String({ pattern: VARIABLE_NAME }), ThresholdRule, {
  maxProperties: MAX_RULES,
  description:
    'Threshold rules keyed by variable name (any variable, seen yet or not); a sensor’s rule for a variable replaces its type’s default for that variable',
  examples: [{ temperatura: { min: 0, max: 40, for_readings: 3 }, co2: { max: 1000 } }],
})
export type Thresholds = typeof Thresholds.static

export const TypeThresholds = t.Object({
  tipo: t.String({ examples: ['temperatura'] }),
  thresholds: Thresholds,
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type TypeThresholds = typeof TypeThresholds.static

export const TipoParams = t.Object({ tipo: Text(100, 'temperatura') })
