// The drizzle schema (SQLite): domain tables, the event log and its sequence counter, users.
import { sql } from 'drizzle-orm'
import {
  index,
  integer,
  primaryKey,
  real,
  sqliteTable,
  text,
  uniqueIndex,
} from 'drizzle-orm/sqlite-core'

const timestamps = {
  created_at: integer('created_at').notNull(),
  updated_at: integer('updated_at').notNull(),
}

export const locations = sqliteTable('locations', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  nombre: text('nombre').notNull(),
  descripcion: text('descripcion'),
  latitud: real('latitud'),
  longitud: real('longitud'),
  ...timestamps,
})

export const sensors = sqliteTable(
  'sensors',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    tipo: text('tipo').notNull(),
    modelo: text('modelo').notNull(),
    nombre: text('nombre'),
    location_id: integer('location_id').references(() => locations.id, { onDelete: 'set null' }),
    /** Threshold rules per variable; they replace the sensor type's defaults variable by variable. */
    thresholds: text('thresholds', { mode: 'json' }),
    /** Liveness: unknown until the first reading, then online, or offline once silent past its limit. */
    status: text('status', { enum: ['unknown', 'online', 'offline'] })
      .notNull()
      .default('unknown'),
    /** When the server last stored a reading of it (ms), set once per batch. */
    last_seen: integer('last_seen'),
    /** Seconds of silence before it goes offline; null = its type's, then SENSOR_OFFLINE_AFTER; 0 = never. */
    offline_after: integer('offline_after'),
    ...timestamps,
  },
  (table) => [
    index('sensors_location_idx').on(table.location_id),
    index('sensors_status_idx').on(table.status),
  ],
)

/** Settings shared by every sensor of one `tipo`: how long one may stay silent before it is offline. */
export const sensorTypes = sqliteTable('sensor_types', {
  tipo: text('tipo').primaryKey(),
  offline_after: integer('offline_after').notNull(),
  ...timestamps,
})

/** Default threshold rules for every sensor of one `tipo`. */
export const sensorTypeThresholds = sqliteTable('sensor_type_thresholds', {
  tipo: text('tipo').primaryKey(),
  thresholds: text('thresholds', { mode: 'json' }).notNull(),
  ...timestamps,
})

/**
 * One row per reading; `values` holds every measurement as JSON ({"temperatura":23.5,"co2":415}), so a
 * reading is one insert whatever it measures (docs/storage.md). The column name is an SQL keyword:
 * quote it in hand-written SQL ("values"); drizzle does.
 */
export const readings = sqliteTable(
  'readings',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    sensor_id: integer('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    values: text('values', { mode: 'json' })
      .$type<Record<string, number>>()
      .notNull()
      .default(sql`'{}'`),
    timestamp: integer('timestamp').notNull(),
    created_at: integer('created_at').notNull(),
  },
  (table) => [
    index('readings_sensor_time_idx').on(table.sensor_id, table.timestamp),
    // Retention deletes the oldest readings of every sensor: by time, across sensors.
    index('readings_time_idx').on(table.timestamp),
  ],
)

/**
 * The newest value of each sensor variable (greatest timestamp, then greatest reading id), one row per
 * sensor, kept in the ingest transaction: "what does every sensor read right now" is one small table,
 * never a scan of readings.
 */
export const latestValues = sqliteTable('latest_values', {
  sensor_id: integer('sensor_id')
    .primaryKey()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  /** Each variable's newest value as JSON, by name: `{"co2":[415,1733011200000,88]}` (value, ms, reading id). */
  newest: text('newest').notNull(),
  /** The sensor's GET /latest `values` as JSON text without braces (`"co2":{"value":415,"timestamp":"…"}`). */
  entries: text('entries').notNull(),
})

/** Every measurement name seen in a reading (registered on first appearance), with its unit. */
export const variables = sqliteTable('variables', {
  name: text('name').primaryKey(),
  unit: text('unit'),
  description: text('description'),
  ...timestamps,
})

export const anomalies = sqliteTable(
  'anomalies',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    sensor_id: integer('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    reading_id: integer('reading_id').references(() => readings.id, { onDelete: 'set null' }),
    variable: text('variable').notNull(),
    value: real('value').notNull(),
    severity: text('severity').notNull(),
    status: text('status').notNull().default('open'),
    rule: text('rule').notNull().default('manual'),
    /** What opened it: above_max, below_min, spike, stuck or drift (null for manual ones). */
    kind: text('kind'),
    expected_min: real('expected_min'),
    expected_max: real('expected_max'),
    message: text('message'),
    count: integer('count').notNull().default(1),
    first_seen: integer('first_seen').notNull(),
    last_seen: integer('last_seen').notNull(),
    resolved_at: integer('resolved_at'),
    acknowledged_at: integer('acknowledged_at'),
    ...timestamps,
  },
  (table) => [
    index('anomalies_sensor_status_idx').on(table.sensor_id, table.status),
    // Deleting a reading sets its anomalies' reading_id to null: found by index, not a scan.
    index('anomalies_reading_idx').on(table.reading_id),
  ],
)

/**
 * What the detector knows about one sensor variable (windows, scales, daily profile, streaks), so a
 * restart resumes where it stopped; `rev` tells the write (PostgreSQL: the progress `upto` it was
 * written at).
 */
export const detectorState = sqliteTable(
  'detector_state',
  {
    sensor_id: integer('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    variable: text('variable').notNull(),
    rev: text('rev').notNull(),
    state: text('state', { mode: 'json' }).notNull(),
    updated_at: integer('updated_at').notNull(),
    /** PostgreSQL: the parts of the state that change rarely, written only when they change (null:
     *  `state` is whole). See DetectorStates. */
    season: text('season', { mode: 'json' }),
  },
  (table) => [primaryKey({ columns: [table.sensor_id, table.variable] })],
)

/**
 * PostgreSQL: how far each sensor's detector states have got. `upto`: the newest reading id they have
 * checked; `dirty_since`: null when detector_state holds them as of `upto`, else the oldest reading id
 * they checked that detector_state does not reflect yet (the states are in the memory of the instance
 * that checked it, which writes them back within a second). Unused on SQLite, whose one writer keeps
 * the states in memory. See DetectorStates.
 */
export const detectorProgress = sqliteTable('detector_progress', {
  sensor_id: integer('sensor_id')
    .primaryKey()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  upto: integer('upto').notNull(),
  dirty_since: integer('dirty_since'),
})

export const predictions = sqliteTable(
  'predictions',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    sensor_id: integer('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    variable: text('variable').notNull(),
    horizon_minutes: integer('horizon_minutes').notNull(),
    status: text('status').notNull().default('pending'),
    model: text('model'),
    forecast: text('forecast', { mode: 'json' }),
    metrics: text('metrics', { mode: 'json' }),
    reason: text('reason'),
    completed_at: integer('completed_at'),
    ...timestamps,
  },
  (table) => [index('predictions_sensor_idx').on(table.sensor_id)],
)

/**
 * Every event the server emitted, as the exact frame that went out, for replay after reconnect. A
 * reading's `created` event is stored lean: `payload` empty and `reading_id` set, its frame rebuilt from
 * the readings row (src/realtime/reading-frames.ts) until a change to that row writes it in whole.
 */
export const events = sqliteTable(
  'events',
  {
    seq: integer('seq').primaryKey(),
    channels: text('channels').notNull(),
    payload: text('payload').notNull(),
    created_at: integer('created_at').notNull(),
    /** Set only while the frame is left out: the reading it is rebuilt from. */
    reading_id: integer('reading_id'),
  },
  // No index on created_at: retention by age reads the log in seq order (see pruneCutoff), and an
  // index written with every event cost about a microsecond per reading at ingest.
  (table) => [
    index('events_reading_idx')
      .on(table.reading_id)
      .where(sql`reading_id is not null`),
  ],
)

/** One row: the deployment's event sequence and the epoch that names this history. */
export const eventMeta = sqliteTable('event_meta', {
  id: integer('id').primaryKey(),
  epoch: text('epoch').notNull(),
  last_seq: integer('last_seq').notNull().default(0),
  /**
   * Bumped by every change to the webhooks' filters; read back with the seq in each write, so an
   * instance knows its cached filters are current without another query.
   */
  webhook_rev: integer('webhook_rev').notNull().default(0),
  created_at: integer('created_at')
    .notNull()
    .default(sql`(unixepoch() * 1000)`),
})

/** People and services that log in: argon2id password hash, role, and the channels they may join. */
export const users = sqliteTable('users', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  username: text('username').notNull().unique(),
  password_hash: text('password_hash').notNull(),
  role: text('role', { enum: ['admin', 'operator', 'viewer'] }).notNull(),
  channels: text('channels', { mode: 'json' }).$type<string[]>().notNull(),
  ...timestamps,
})

/**
 * Revoked access tokens: one token (`jti`, logout) or every token of a user issued before
 * `not_before` (password change, deletion). Rows go once the tokens they name have expired.
 */
export const tokenRevocations = sqliteTable('token_revocations', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  jti: text('jti'),
  username: text('username'),
  not_before: integer('not_before'),
  expires_at: integer('expires_at').notNull(),
  created_at: integer('created_at').notNull(),
})

/** A device's credential for writing its own sensor's readings: only the SHA-256 of the key is kept. */
export const deviceKeys = sqliteTable(
  'device_keys',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    sensor_id: integer('sensor_id')
      .notNull()
      .references(() => sensors.id, { onDelete: 'cascade' }),
    name: text('name'),
    /** The key's first characters, to tell keys apart in a list. */
    prefix: text('prefix').notNull(),
    hash: text('hash').notNull(),
    created_at: integer('created_at').notNull(),
    last_used_at: integer('last_used_at'),
    revoked_at: integer('revoked_at'),
  },
  (table) => [
    uniqueIndex('device_keys_hash_idx').on(table.hash),
    index('device_keys_sensor_idx').on(table.sensor_id),
  ],
)

/** Endpoints that receive matching events as signed POSTs (Standard Webhooks). */
export const webhooks = sqliteTable('webhooks', {
  id: integer('id').primaryKey({ autoIncrement: true }),
  url: text('url').notNull(),
  description: text('description'),
  channels: text('channels', { mode: 'json' }).$type<string[]>().notNull(),
  event_types: text('event_types', { mode: 'json' }).$type<string[]>().notNull(),
  /** active, paused (by a person) or disabled (by the dispatcher after failing for too long). */
  status: text('status', { enum: ['active', 'paused', 'disabled'] }).notNull(),
  secret: text('secret').notNull(),
  /** After a rotation, the old secret still signs until `previous_secret_until`. */
  previous_secret: text('previous_secret'),
  previous_secret_until: integer('previous_secret_until'),
  disabled_reason: text('disabled_reason'),
  /** The instance sending this endpoint's deliveries, and until when its claim holds. */
  lease_owner: text('lease_owner'),
  lease_until: integer('lease_until'),
  ...timestamps,
})

/** The outbox: one row per event and endpoint, written in the event's transaction, sent after commit. */
export const webhookDeliveries = sqliteTable(
  'webhook_deliveries',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    webhook_id: integer('webhook_id')
      .notNull()
      .references(() => webhooks.id, { onDelete: 'cascade' }),
    /** The event's seq; 0 for a test delivery. */
    seq: integer('seq').notNull(),
    /** The webhook-id header: the same on every attempt. */
    msg_id: text('msg_id').notNull(),
    payload: text('payload').notNull(),
    /** pending, delivered, failed (gave up) or cancelled (its endpoint was disabled first). */
    status: text('status', { enum: ['pending', 'delivered', 'failed', 'cancelled'] }).notNull(),
    attempts: integer('attempts').notNull().default(0),
    next_attempt_at: integer('next_attempt_at').notNull(),
    first_attempt_at: integer('first_attempt_at'),
    last_attempt_at: integer('last_attempt_at'),
    response_status: integer('response_status'),
    response_ms: integer('response_ms'),
    last_error: text('last_error'),
    delivered_at: integer('delivered_at'),
    created_at: integer('created_at').notNull(),
  },
  (table) => [
    index('webhook_deliveries_log_idx').on(table.webhook_id, table.id),
    index('webhook_deliveries_pending_idx')
      .on(table.webhook_id, table.id)
      .where(sql`status = 'pending'`),
  ],
)

/**
 * Per-minute and per-hour summaries of one sensor variable (docs/storage.md#history): kept by the rollup
 * worker (src/modules/history/rollups.ts), they answer aggregates over long ranges and outlive retention.
 * `bucket` is the bucket's start (ms, UTC epoch multiple); first/last are the values of the earliest and
 * latest reading in it (by timestamp, then id).
 */
const rollupColumns = {
  sensor_id: integer('sensor_id')
    .notNull()
    .references(() => sensors.id, { onDelete: 'cascade' }),
  variable: text('variable').notNull(),
  bucket: integer('bucket').notNull(),
  count: integer('count').notNull(),
  sum: real('sum').notNull(),
  min: real('min').notNull(),
  max: real('max').notNull(),
  first: real('first').notNull(),
  first_ts: integer('first_ts').notNull(),
  first_id: integer('first_id').notNull(),
  last: real('last').notNull(),
  last_ts: integer('last_ts').notNull(),
  last_id: integer('last_id').notNull(),
}

export const rollupsMinute = sqliteTable('rollups_minute', rollupColumns, (table) => [
  primaryKey({ columns: [table.sensor_id, table.variable, table.bucket] }),
])

export const rollupsHour = sqliteTable('rollups_hour', rollupColumns, (table) => [
  primaryKey({ columns: [table.sensor_id, table.variable, table.bucket] }),
])

/**
 * The rollups' progress (one row, id 1): every reading with id <= `watermark` is in them; raw readings
 * older than `pruned_before` (ms) were deleted by retention.
 */
export const historyState = sqliteTable('history_state', {
  id: integer('id').primaryKey(),
  watermark: integer('watermark').notNull().default(0),
  pruned_before: integer('pruned_before').notNull().default(0),
})
