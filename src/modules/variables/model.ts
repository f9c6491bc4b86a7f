// Variable schemas: a measurement name (any lower-case name a reading uses), its unit and description.
import { t } from 'elysia'
import { Text } from '../../lib/schemas'

/** A measurement name: lower-case letter first, then letters, digits or _, at most 63 characters. */
export const VARIABLE_NAME = '^[a-z][a-z0-9_]{0,62}$'
export const VARIABLE_NAME_RE = new RegExp(VARIABLE_NAME)
export const NAME_RULE =
  'a name of 1 to 63 lower-case letters, digits or _, starting with a letter (co2, pm2_5)'

export const VariableName = t.String({
  pattern: VARIABLE_NAME,
  description: `The measurement: ${NAME_RULE}`,
  examples: ['temperatura', 'co2'],
})

export const Variable = t.Object({
  name: t.String({ examples: ['co2'] }),
  unit: t.Nullable(t.String({ examples: ['ppm'] })),
  description: t.Nullable(t.String({ examples: ['Dióxido de carbono'] })),
  created_at: t.String({ format: 'date-time', description: 'First seen, or first described' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type Variable = typeof Variable.static

export const VariablePut = t.Object(
  {
    unit: t.Optional(t.Nullable(Text(32, 'ppm'))),
    description: t.Optional(t.Nullable(Text(500, 'Dióxido de carbono'))),
  },
  {
    description: 'The whole description: a field left out is cleared',
    examples: [{ unit: 'ppm', description: 'Dióxido de carbono' }],
  },
)
export type VariablePut = typeof VariablePut.static

export const VariableParams = t.Object({ name: VariableName })
