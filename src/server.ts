// Starts an instance: context, app, listener, publisher wired to the server, and a graceful stop.
import type { Config } from './config'
import { createApp } from './app'
import { createContext } from './context'
import type { Logger } from './lib/logger'
import { VERSION } from './lib/version'
import { ensureFirstUser } from './modules/users/service'
import { startForecasting } from './modules/predictions/service'
import { startLiveness } from './modules/liveness/service'
import { startHistory } from './modules/history/worker'

const SHUTDOWN_GRACE_MS = 10_000

export interface RunningServer {
  url: string
  port: number
  stop(): Promise<void>
}

export async function startServer(config: Readonly<Config>, log?: Logger) {
  const ctx = await createContext(config, log)
  await ensureFirstUser(ctx, config.admin, ctx.log)
  await ctx.revocations.start()
  ctx.revocations.onRevoked(ctx.realtime.sockets.closeRevoked)
  const app = createApp(ctx)
  app.listen({ port: config.port, hostname: config.host })
  const server = app.server!
  ctx.realtime.attach(server)
  await ctx.webhooks.start(server.port!)
  await startForecasting(ctx)
  startLiveness(ctx)
  startHistory(ctx, config)
  await ctx.emitter.system({
    level: 'info',
    message: 'Sistema iniciado correctamente',
    data: { module: 'websocket', version: VERSION, instance: config.instanceId },
  })
  ctx.mqtt.start()
  const url = `http://${config.host === '0.0.0.0' ? '127.0.0.1' : config.host}:${server.port}`
  ctx.log.info(`Vigía ${VERSION} listening on ${url}`, {
    database: config.database.kind,
    pubsub: ctx.realtime.cluster.mode,
    instance: config.instanceId,
    auth: config.authMode === 'required' ? `required, reads ${config.authReads}` : 'open',
  })

  let stopping: Promise<void> | undefined
  /**
   * Stops accepting, tells every client (a warning system_event), closes sockets with 1001, lets
   * in-flight requests and their writes finish (up to SHUTDOWN_GRACE_MS, then cuts what is left),
   * then closes the database.
   */
  const stop = () =>
    (stopping ??= (async () => {
      const drained = server.stop(false).then(() => true)
      const notice = await ctx.emitter
        .system({
          level: 'warning',
          message: 'El servidor se está deteniendo',
          data: { module: 'server', reason: 'shutdown', instance: config.instanceId },
        })
        .catch(() => undefined)
      // Before sockets and database close: the MQTT batch in hand is stored, sent and acknowledged.
      await ctx.mqtt.stop()
      await ctx.realtime.stop('Server shutting down', notice && JSON.stringify(notice))
      let timer: Timer | undefined
      const grace = new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), SHUTDOWN_GRACE_MS)
      })
      if (!(await Promise.race([drained, grace]))) {
        ctx.log.warn('connections still open after the shutdown grace period; closing them')
        await server.stop(true)
      }
      clearTimeout(timer)
      await ctx.intelligence.stop()
      // In-flight deliveries finish and are recorded; the endpoints' leases are let go for other instances.
      await ctx.webhooks.stop()
      await ctx.revocations.stop()
      // Writes already queued on the writer finish before the database closes.
      await ctx.db.transaction(async () => undefined).catch(() => undefined)
      await ctx.db.close()
      ctx.log.info('stopped')
    })())

  const running: RunningServer & { app: typeof app; ctx: typeof ctx } = {
    url,
    port: server.port!,
    stop,
    app,
    ctx,
  }
  return running
}
