// Anomaly schemas: what was seen on which variable, how bad it is and where it stands in its lifecycle.
import { t } from 'elysia'
import { BodyId, Id, OneOf, pagination, timeRange } from '../../lib/schemas'
import { VariableName } from '../variables/model'

export const SEVERITIES = ['warning', 'minor', 'major', 'critical'] as const
export const Severity = OneOf(SEVERITIES, { examples: ['major'] })
export const STATUSES = ['open', 'acknowledged', 'resolved'] as const
export const Status = OneOf(STATUSES, { examples: ['open'] })

export const Anomaly = t.Object({
  id: t.Integer({ examples: [7] }),
  sensor_id: t.Integer({ examples: [1] }),
  reading_id: t.Nullable(t.Integer()),
  variable: t.String({
    description:
      'The measurement it is about (any variable); `last_seen` for an offline sensor (kind offline)',
    examples: ['temperatura'],
  }),
  value: t.Number({ examples: [48.2] }),
  severity: Severity,
  status: Status,
  rule: t.String({
    description: 'What raised it: threshold, statistical, liveness or manual',
    examples: ['threshold'],
  }),
  kind: t.Nullable(
    t.String({
      description:
        'What opened it: above_max or below_min (threshold), spike, stuck or drift (statistical), offline (liveness)',
      examples: ['above_max'],
    }),
  ),
  expected_min: t.Nullable(t.Number()),
  expected_max: t.Nullable(t.Number()),
  message: t.Nullable(t.String()),
  count: t.Integer({ description: 'Hits folded into this anomaly while it was open' }),
  first_seen: t.String({ format: 'date-time', description: 'Time of the first reading that hit' }),
  last_seen: t.String({ format: 'date-time', description: 'Time of the latest reading that hit' }),
  resolved_at: t.Nullable(t.String({ format: 'date-time' })),
  acknowledged_at: t.Nullable(t.String({ format: 'date-time' })),
  created_at: t.String({ format: 'date-time' }),
  updated_at: t.String({ format: 'date-time' }),
})
export type Anomaly = typeof Anomaly.static

const fields = {
  sensor_id: BodyId,
  variable: VariableName,
  value: t.Number({ minimum: -1e9, maximum: 1e9, examples: [48.2] }),
  severity: t.Optional(Severity),
  status: t.Optional(Status),
  rule: t.Optional(t.String({ minLength: 1, maxLength: 50, examples: ['manual'] })),
  expected_min: t.Optional(t.Nullable(t.Number({ minimum: -1e9, maximum: 1e9 }))),
  expected_max: t.Optional(t.Nullable(t.Number({ minimum: -1e9, maximum: 1e9 }))),
  message: t.Optional(t.Nullable(t.String({ maxLength: 2000 }))),
}

export const AnomalyCreate = t.Object(fields)
export type AnomalyCreate = typeof AnomalyCreate.static

export const AnomalyPatch = t.Partial(t.Object(fields), { minProperties: 1 })
export type AnomalyPatch = typeof AnomalyPatch.static

export const AnomalyQuery = t.Object({
  ...pagination,
  sensor_id: t.Optional(Id),
  status: t.Optional(Status),
  severity: t.Optional(Severity),
  variable: t.Optional(VariableName),
  rule: t.Optional(OneOf(['threshold', 'statistical', 'liveness', 'manual'])),
  ...timeRange,
})
export type AnomalyQuery = typeof AnomalyQuery.static
