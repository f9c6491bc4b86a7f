// Builds the Elysia app (errors, docs, metrics, CORS, limits and auth first, then the modules) without listening.
import { openapi } from '@elysiajs/openapi'
import { Elysia } from 'elysia'
import type { AppContext } from './context'
import { errorHandler } from './lib/http-errors'
import { bodyLimit, corsPolicy, noNulText, requestLimits } from './lib/http-policy'
import { VERSION } from './lib/version'
import { docsAssets } from './modules/system/docs'
import { webAssets } from './modules/system/assets'
import { systemModule } from './modules/system'
import { sensorsModule } from './modules/sensors'
import { locationsModule } from './modules/locations'
import { readingsModule } from './modules/readings'
import { anomaliesModule } from './modules/anomalies'
import { predictionsModule } from './modules/predictions'
import { websocketOptions } from './realtime'
import { thresholdsModule } from './modules/thresholds'
import { realtimeRoutes } from './realtime/routes'
import { authModule } from './modules/auth'
import { tokenAdmit } from './modules/auth/admit'
import { createGuard } from './modules/auth/guard'
import { createTokens } from './modules/auth/tokens'
import { usersModule } from './modules/users'

export function createApp(ctx: AppContext) {
  const { config } = ctx
  const tokens = createTokens(config)
  const guard = createGuard(config, tokens)
  return (
    new Elysia({
      name: 'vigia',
      // bodyLimit answers oversized bodies with a JSON 413 from Content-Length, so Bun's own cap
      // (a bare 413 before any hook runs) must not come first.
      // Elysia shares the port by default (SO_REUSEPORT): a second instance started on a taken port
      // would silently take half the connections instead of failing.
      serve: { maxRequestBodySize: Number.MAX_SAFE_INTEGER, reusePort: false },
      // Elysia finds the path by skipping 11 characters ("http://" and a 4-character host) by default;
      // with a shorter Host header (`Host: x`) it read part of the path as the host, so
      // `/ab/metrics` was served as /metrics. 7 skips "http://" only (the server speaks plain HTTP).
      handler: { standardHostname: false },
      // Responses are plain JSON built by the services; Elysia's t.Integer is a Transform whose Encode is
      // the identity, and running it over a 10,000-item batch answer cost a tenth of the ingest time.
      encodeSchema: false,
      websocket: websocketOptions(config),
    })
      .use(errorHandler(ctx))
      // First, so that its release after the response and its body reader cover every route.
      .use(requestLimits(config))
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
              { name: 'auth', description: 'Log in for a bearer token' },
              { name: 'users', description: 'Users, roles and channel rights (admin only)' },
              { name: 'system', description: 'Health and metrics' },
            ],
          },
        }),
      )
      .use(docsAssets)
      .use(webAssets)
      .use(systemModule(ctx))
      .use(corsPolicy(config))
      .use(bodyLimit(config))
      .use(noNulText)
      .use(guard.policy)
      .use(authModule(ctx, tokens, guard))
      .use(usersModule(ctx, guard))
      .use(realtimeRoutes(ctx, tokenAdmit(config, tokens)))
      .use(locationsModule(ctx))
      .use(sensorsModule(ctx))
      .use(readingsModule(ctx))
      .use(anomaliesModule(ctx))
      .use(predictionsModule(ctx))
      .use(thresholdsModule(ctx))
  )
}

export type App = ReturnType<typeof createApp>
