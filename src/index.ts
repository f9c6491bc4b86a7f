// Entry point: parse the environment, start the server, stop gracefully on SIGTERM / SIGINT.
import { ConfigError, loadConfig } from './config'
import { startServer } from './server'
import { createLogger } from './lib/logger'

let config
try {
  config = loadConfig()
} catch (error) {
  if (!(error instanceof ConfigError)) throw error
  process.stderr.write(`Configuration error: ${error.message}\n`)
  process.exit(1)
}

const log = createLogger(config.logLevel)
if (config.jwt.secretGenerated)
  log.warn(
    'JWT_SECRET is not set: using a random secret, so tokens die with this process. Set it when running more than one instance.',
  )

try {
  const running = await startServer(config, log)
  const shutdown = (signal: string) => {
    log.info(`${signal} received, shutting down`)
    running.stop().then(
      () => process.exit(0),
      (error) => {
        log.error('shutdown failed', { error: String(error) })
        process.exit(1)
      },
    )
  }
  process.on('SIGTERM', () => shutdown('SIGTERM'))
  process.on('SIGINT', () => shutdown('SIGINT'))
} catch (error) {
  if (error instanceof ConfigError) {
    process.stderr.write(`Configuration error: ${error.message}\n`)
    process.exit(1)
  }
  log.error('start failed', { error: error instanceof Error ? error.message : String(error) })
  process.exit(1)
}
