// The webhook machinery of one instance: address policy, sender, outbox (hooked into the emitter) and
// dispatcher. Started once the server listens (its own port is then known), stopped before the database.
import type { Config } from '../../config'
import type { Database } from '../../db'
import { Counter } from 'prom-client'
import type { Logger } from '../../lib/logger'
import type { Metrics } from '../../lib/metrics'
import type { Emitter } from '../../realtime/emitter'
import { createAddressPolicy } from './address'
import { createDispatcher } from './dispatcher'
import { createOutbox } from './outbox'
import { createSender } from './sender'
import type { WebhookDeps } from './service'

export function createWebhooks(deps: {
  config: Readonly<Config>
  db: Database
  emitter: Emitter
  log: Logger
  metrics: Metrics
  epoch: string
}) {
  const { config, db, emitter, log } = deps
  const outcomes = new Counter({
    name: 'vigia_webhook_deliveries_total',
    help: 'Webhook delivery attempts by outcome (delivered, failed_attempt), and deliveries given up',
    labelNames: ['outcome'] as const,
    registers: [deps.metrics.registry],
  })
  let ownPort: number | undefined
  const policy = createAddressPolicy(config.webhooks.allow, () => ownPort)
  const sender = createSender(policy, config.webhooks.timeoutMs)
  const dispatcher = createDispatcher({
    config,
    db,
    emitter,
    log,
    sender,
    counted: (outcome) => outcomes.inc({ outcome }),
  })
  const outbox = createOutbox(deps.epoch, (ids) => dispatcher.wake(ids))
  emitter.useOutbox(outbox)
  const service: WebhookDeps = { db, policy, sender, changed: (id) => dispatcher.changed(id) }
  return {
    service,
    outbox,
    dispatcher,
    policy,
    /** Starts sending; `port` is this server's own, which no webhook may call. */
    start(port: number) {
      ownPort = port
      return dispatcher.start()
    },
    stop: () => dispatcher.stop(),
  }
}

export type Webhooks = ReturnType<typeof createWebhooks>
