// Builds the Elysia app (errors, CORS, docs and metrics first, then the modules) without listening.
import { cors } from '@elysiajs/cors'
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import type { AppContext } from './context'
import { errorHandler } from './lib/http-errors'
import { VERSION } from './lib/version'
import { docsAssets } from './modules/system/docs'
import { webAssets } from './modules/system/assets'
import { systemModule } from './modules/system'
import { sensorsModule } from './modules/sensors'
import { locationsModule } from './modules/locations'
import { readingsModule } from './modules/readings'
import { anomaliesModule } from './modules/anomalies'
import { predictionsModule } from './modules/predictions'
import { realtimeRoutes } from './realtime/routes'

export function createApp(ctx: AppContext) {
  const { config } = ctx
  return new Elysia({
    name: 'vigia',
    serve: { maxRequestBodySize: config.bodyLimitBytes },
    websocket: {
      maxPayloadLength: config.ws.maxMessageBytes,
      backpressureLimit: config.ws.backpressureLimit,
      closeOnBackpressureLimit: false,
      // Liveness is ours (WEBSOCKET_PING_INTERVAL / _TIMEOUT), so Bun's own idle timer is off.
      idleTimeout: 0,
      sendPings: false,
      perMessageDeflate: false,
    },
  })
    .use(errorHandler(ctx))
    .use(
      cors({
        origin: config.corsOrigins === '*' ? true : [...config.corsOrigins],
        exposeHeaders: ['X-Total-Count'],
      }),
    )
    .use(
      openapi({
        path: '/swagger',
        specPath: '/swagger/json',
        provider: 'swagger-ui',
        swagger: {
          cdn: '/swagger/assets/swagger-ui-bundle.js',
          theme: '/swagger/assets/swagger-ui.css',
          autoDarkMode: false,
        },
        exclude: { paths: [/^\/swagger/, '/', '/websocket_client.html', '/metrics'] },
        documentation: {
          info: {
            title: 'Vigía',
            version: VERSION,
            description:
              'Realtime server for sensor networks: REST for sensors, locations, readings, anomalies and predictions; every change pushed live on WebSocket channels (/api/v1/ws).',
          },
          tags: [
            { name: 'sensors', description: 'Sensors (tipo, modelo, optional location)' },
            { name: 'locations', description: 'Places where sensors are installed' },
            { name: 'readings', description: 'Temperature and humidity readings' },
            { name: 'anomalies', description: 'Anomalies detected on readings' },
            { name: 'predictions', description: 'Forecasts of a sensor variable' },
            { name: 'websocket', description: 'Test events and WebSocket statistics' },
            { name: 'system', description: 'Health and metrics' },
          ],
        },
      }),
    )
    .use(docsAssets)
    .use(webAssets)
    .use(systemModule(ctx))
    .use(realtimeRoutes(ctx))
    .use(locationsModule(ctx))
    .use(sensorsModule(ctx))
    .use(readingsModule(ctx))
    .use(anomaliesModule(ctx))
    .use(predictionsModule(ctx))
}

export type App = ReturnType<typeof createApp>
