// Schemas of the history routes: the aggregate query (CONTRACT §8) and one aggregate row.
import { t } from 'elysia'
import { Timestamp } from '../../lib/schemas'
import { VARIABLE_NAME } from '../variables/model'

export const FNS = ['avg', 'min', 'max', 'count', 'sum', 'first', 'last'] as const
export type Fn = (typeof FNS)[number]

export const BUCKET_PATTERN = '^[1-9][0-9]{0,9}[smhd]$'

export const AggregateQuery = t.Object({
  sensor_id: t.String({
    pattern: '^[1-9][0-9]{0,15}(,[1-9][0-9]{0,15})*$',
    description: 'One sensor id or several, comma-separated',
    examples: ['1,2'],
  }),
  variable: t.String({
    pattern: VARIABLE_NAME,
    description: 'The measurement to aggregate',
    examples: ['temperatura'],
  }),
  from: Timestamp('Start of the range, inclusive'),
  to: Timestamp('End of the range, exclusive'),
  bucket: t.String({
    pattern: BUCKET_PATTERN,
    description:
      'Bucket size `<n>s|m|h|d`, from 1s to 30d; buckets start at UTC epoch multiples of the size',
    examples: ['5m'],
  }),
  fn: t.Optional(
    t.String({
      pattern: `^(${FNS.join('|')})(,(${FNS.join('|')}))*$`,
      description: 'Comma-separated functions to compute; avg,min,max,count when omitted',
      examples: ['avg,min,max,count'],
    }),
  ),
})
export type AggregateQuery = typeof AggregateQuery.static

const num = (description: string) => t.Optional(t.Number({ description }))

export const AggregateRow = t.Object(
  {
    sensor_id: t.Integer({ examples: [1] }),
    variable: t.String({ examples: ['temperatura'] }),
    bucket: t.String({
      format: 'date-time',
      description: 'Start of the bucket (UTC)',
      examples: ['2025-07-20T10:30:00Z'],
    }),
    avg: num('Mean of the readings in the bucket'),
    min: num('Smallest value'),
    max: num('Largest value'),
    count: t.Optional(t.Integer({ minimum: 1, description: 'Readings in the bucket' })),
    sum: num('Sum of the values'),
    first: num('Value of the earliest reading (by timestamp, then id)'),
    last: num('Value of the latest reading (by timestamp, then id)'),
  },
  {
    examples: [
      {
        sensor_id: 1,
        variable: 'temperatura',
        bucket: '2025-07-20T10:30:00Z',
        avg: 23.4,
        min: 22.9,
        max: 24.1,
        count: 60,
      },
    ],
  },
)
export type AggregateRow = typeof AggregateRow.static
