// The PostgreSQL mirror of schema.ts: the same tables and columns, for drizzle-kit's PostgreSQL migrations.
// Queries are always built from schema.ts; these column types make PostgreSQL hand back the same values
// (ms timestamps and ids as bigint read as numbers, JSON as json, which keeps the text as written, as
// SQLite does, floats as double precision).
import { sql } from 'drizzle-orm'
import {
  bigint,
  doublePrecision,
  index,
  integer,
  json,
  jsonb,
  pgTable,
  primaryKey,
  text,
  uniqueIndex,
} from 'drizzle-orm/pg-core'

const id = () => bigint('id', { mode: 'number' }).primaryKey().generatedByDefaultAsIdentity()
const ms = (name: string) => bigint(name, { mode: 'number' })

const timestamps = {
  created_at: ms('created_at').notNull(),
  updated_at: ms('updated_at').notNull(),
}

export const locations = pgTable('locations', {
  id: id(),
  nombre: text('nombre').notNull(),
  descripcion: text('descripcion'),
  latitud: doublePrecision('latitud'),
  longitud: doublePrecision('longitud'),
  ...timestamps,
})

export const sensors = pgTable(
  'sensors',
  {
    id: id(),
    tipo: text('tipo').notNull(),
    modelo: text('modelo').notNull(),
    nombre: text('nombre'),
    location_id: ms('location_id').references(() => locations.id, { onDelete: 'set null' }),
    thresholds: json('thresholds'),
    status: text('status', { enum: ['unknown', 'online', 'offline'] })
      .notNull()
      .default('unknown'),
    last_seen: ms('last_seen'),
    offline_after: integer('offline_after'),
    ...timestamps,
  },
  (table) => [
    index('sensors_location_idx').on(table.location_id),
    index('sensors_status_idx').on(table.status),
  ],
)

export const sensorTypes = pgTable('sensor_types', {
  tipo: text('tipo').primaryKey(),
  offline_after: integer('offline_after').notNull(),
  ...timestamps,
})

export const sensorTypeThresholds = pgTable('sensor_type_thresholds', {
  tipo: text('tipo').primaryKey(),
  thresholds: json('thresholds').notNull(),
  ...timestamps,
})

export const readings = pgTable(
  'readings',
  {
    id: id(),
    sensor_id: ms('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    // jsonb: aggregates extract one variable from millions of rows, which json would parse again each time.
    values: jsonb('values')
      .$type<Record<string, number>>()
      .notNull()
      .default(sql`'{}'::jsonb`),
    timestamp: ms('timestamp').notNull(),
    created_at: ms('created_at').notNull(),
  },
  (table) => [
    index('readings_sensor_time_idx').on(table.sensor_id, table.timestamp),
    index('readings_time_idx').on(table.timestamp),
  ],
)

/** One row per sensor: see the SQLite schema. */
export const latestValues = pgTable('latest_values', {
  sensor_id: ms('sensor_id')
    .primaryKey()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  newest: text('newest').notNull(),
  entries: text('entries').notNull(),
})

export const variables = pgTable('variables', {
  name: text('name').primaryKey(),
  unit: text('unit'),
  description: text('description'),
  ...timestamps,
})

export const anomalies = pgTable(
  'anomalies',
  {
    id: id(),
    sensor_id: ms('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    reading_id: ms('reading_id').references(() => readings.id, { onDelete: 'set null' }),
    variable: text('variable').notNull(),
    value: doublePrecision('value').notNull(),
    severity: text('severity').notNull(),
    status: text('status').notNull().default('open'),
    rule: text('rule').notNull().default('manual'),
    kind: text('kind'),
    expected_min: doublePrecision('expected_min'),
    expected_max: doublePrecision('expected_max'),
    message: text('message'),
    count: integer('count').notNull().default(1),
    first_seen: ms('first_seen').notNull(),
    last_seen: ms('last_seen').notNull(),
    resolved_at: ms('resolved_at'),
    acknowledged_at: ms('acknowledged_at'),
    ...timestamps,
  },
  (table) => [
    index('anomalies_sensor_status_idx').on(table.sensor_id, table.status),
    index('anomalies_reading_idx').on(table.reading_id),
  ],
)

export const detectorState = pgTable(
  'detector_state',
  {
    sensor_id: ms('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    variable: text('variable').notNull(),
    rev: text('rev').notNull(),
    // JSON as text: a state is only ever read back whole, and PostgreSQL checked every json value's
    // syntax on each of its many writes (drizzle/postgres/0009).
    state: text('state').notNull(),
    updated_at: ms('updated_at').notNull(),
    season: text('season'),
  },
  (table) => [primaryKey({ columns: [table.sensor_id, table.variable] })],
)

export const detectorProgress = pgTable('detector_progress', {
  sensor_id: ms('sensor_id')
    .primaryKey()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  upto: ms('upto').notNull(),
  dirty_since: ms('dirty_since'),
})

export const predictions = pgTable(
  'predictions',
  {
    id: id(),
    sensor_id: ms('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    variable: text('variable').notNull(),
    horizon_minutes: integer('horizon_minutes').notNull(),
    status: text('status').notNull().default('pending'),
    model: text('model'),
    forecast: json('forecast'),
    metrics: json('metrics'),
    reason: text('reason'),
    completed_at: ms('completed_at'),
    ...timestamps,
  },
  (table) => [index('predictions_sensor_idx').on(table.sensor_id)],
)

export const events = pgTable(
  'events',
  {
    seq: bigint('seq', { mode: 'number' }).primaryKey(),
    channels: text('channels').notNull(),
    payload: text('payload').notNull(),
    created_at: ms('created_at').notNull(),
    reading_id: bigint('reading_id', { mode: 'number' }),
  },
  // No index on created_at: retention by age reads the log in seq order (see pruneCutoff), and an
  // index written with every event cost about a microsecond per reading at ingest.
  (table) => [
    index('events_reading_idx')
      .on(table.reading_id)
      .where(sql`reading_id is not null`),
  ],
)

export const eventMeta = pgTable('event_meta', {
  id: integer('id').primaryKey(),
  epoch: text('epoch').notNull(),
  last_seq: bigint('last_seq', { mode: 'number' }).notNull().default(0),
  webhook_rev: bigint('webhook_rev', { mode: 'number' }).notNull().default(0),
  created_at: ms('created_at')
    .notNull()
    .default(sql`(extract(epoch from now()) * 1000)::bigint`),
})

export const users = pgTable('users', {
  id: id(),
  username: text('username').notNull().unique(),
  password_hash: text('password_hash').notNull(),
  role: text('role', { enum: ['admin', 'operator', 'viewer'] }).notNull(),
  channels: json('channels').$type<string[]>().notNull(),
  ...timestamps,
})

export const tokenRevocations = pgTable('token_revocations', {
  id: id(),
  jti: text('jti'),
  username: text('username'),
  not_before: ms('not_before'),
  expires_at: ms('expires_at').notNull(),
  created_at: ms('created_at').notNull(),
})

export const deviceKeys = pgTable(
  'device_keys',
  {
    id: id(),
    sensor_id: ms('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    name: text('name'),
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    created_at: ms('created_at').notNull(),
    last_used_at: ms('last_used_at'),
    revoked_at: ms('revoked_at'),
  },
  (table) => [
    uniqueIndex('device_keys_hash_idx').on(table.hash),
    index('device_keys_sensor_idx').on(table.sensor_id),
  ],
)

export const webhooks = pgTable('webhooks', {
  id: id(),
  url: text('url').notNull(),
  description: text('description'),
  channels: json('channels').$type<string[]>().notNull(),
  event_types: json('event_types').$type<string[]>().notNull(),
  status: text('status', { enum: ['active', 'paused', 'disabled'] }).notNull(),
  secret: text('secret').notNull(),
  previous_secret: text('previous_secret'),
  previous_secret_until: ms('previous_secret_until'),
  disabled_reason: text('disabled_reason'),
  lease_owner: text('lease_owner'),
  lease_until: ms('lease_until'),
  ...timestamps,
})

export const webhookDeliveries = pgTable(
  'webhook_deliveries',
  {
    id: id(),
    webhook_id: ms('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    seq: bigint('seq', { mode: 'number' }).notNull(),
    msg_id: text('msg_id').notNull(),
    payload: text('payload').notNull(),
    status: text('status', { enum: ['pending', 'delivered', 'failed', 'cancelled'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    next_attempt_at: ms('next_attempt_at').notNull(),
    first_attempt_at: ms('first_attempt_at'),
    last_attempt_at: ms('last_attempt_at'),
    response_status: integer('response_status'),
    response_ms: integer('response_ms'),
    last_error: text('last_error'),
    delivered_at: ms('delivered_at'),
    created_at: ms('created_at').notNull(),
  },
  (table) => [
    index('webhook_deliveries_log_idx').on(table.webhook_id, table.id),
    index('webhook_deliveries_pending_idx')
      .on(table.webhook_id, table.id)
      .where(sql`status = 'pending'`),
  ],
)

const rollupColumns = {
  sensor_id: ms('sensor_id')
    .notNull()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  variable: text('variable').notNull(),
  bucket: ms('bucket').notNull(),
  count: ms('count').notNull(),
  sum: doublePrecision('sum').notNull(),
  min: doublePrecision('min').notNull(),
  max: doublePrecision('max').notNull(),
  first: doublePrecision('first').notNull(),
  first_ts: ms('first_ts').notNull(),
  first_id: ms('first_id').notNull(),
  last: doublePrecision('last').notNull(),
  last_ts: ms('last_ts').notNull(),
  last_id: ms('last_id').notNull(),
}

export const rollupsMinute = pgTable('rollups_minute', rollupColumns, (table) => [
  primaryKey({ columns: [table.sensor_id, table.variable, table.bucket] }),
])

export const rollupsHour = pgTable('rollups_hour', rollupColumns, (table) => [
  primaryKey({ columns: [table.sensor_id, table.variable, table.bucket] }),
])

export const historyState = pgTable('history_state', {
  id: integer('id').primaryKey(),
  watermark: ms('watermark').notNull().default(0),
  pruned_before: ms('pruned_before').notNull().default(0),
})
