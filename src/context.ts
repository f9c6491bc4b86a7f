// Everything a running instance holds: config, database, realtime layer, metrics and logger.
import type { Config } from './config'
import { openDatabase, type Database } from './db'
import { createMqttIngest, type MqttIngest } from './ingest/mqtt'
import { createLogger, type Logger } from './lib/logger'
import { createMetrics, type Metrics } from './lib/metrics'
import { createIntelligence, type Intelligence } from './intelligence'
import { readSnapshot } from './modules/latest/service'
import { createRevocations, type Revocations } from './modules/auth/revocations'
import { createWebhooks, type Webhooks } from './modules/webhooks/runtime'
import { createRealtime, type Realtime } from './realtime'
import type { Emitter } from './realtime/emitter'

/** What services get: reads from `db.read`, writes (with their events) through `emitter.transact`. */
export interface Services {
  db: Database
  emitter: Emitter
  /** Anomaly detector states and the forecast queue. */
  intelligence: Intelligence
}

export interface AppContext extends Services {
  config: Readonly<Config>
  log: Logger
  metrics: Metrics
  realtime: Realtime
  startedAt: number
  /** MQTT ingestion (inert when MQTT_URL is unset); server.ts starts and stops it. */
  mqtt: MqttIngest
  /** Webhook outbox and dispatcher; server.ts starts and stops the dispatcher. */
  webhooks: Webhooks
  /** Revoked access tokens, refreshed from the database; server.ts starts and stops the polling. */
  revocations: Revocations
}

export async function createContext(config: Readonly<Config>, log = createLogger(config.logLevel)) {
  const db = await openDatabase(config.database, log)
  const metrics = createMetrics()
  const realtime = await createRealtime(config, db, log, metrics, (coverage) =>
    readSnapshot(db, coverage),
  )
  const base = {
    config,
    log,
    metrics,
    db,
    realtime,
    emitter: realtime.emitter,
    intelligence: createIntelligence(config, log, db),
    startedAt: Date.now(),
    webhooks: createWebhooks({
      config,
      db,
      emitter: realtime.emitter,
      log,
      metrics,
      epoch: realtime.epoch,
    }),
    revocations: createRevocations(db, log, config.jwt.expiresIn),
  }
  const context: AppContext = { ...base, mqtt: createMqttIngest(base) }
  return context
}
