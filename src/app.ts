// Builds the Elysia app (errors, docs, metrics, CORS, limits and auth first, then the modules) without listening.
import { Elysia } from 'elysia'
import type { AppContext } from './context'
import { errorHandler } from './lib/http-errors'
import { allowedMethods, compression } from './lib/http-standards'
import { bodyLimit, corsPolicy, noNulText, requestLimits } from './lib/http-policy'
import { apiDocs } from './modules/system/docs'
import { webAssets } from './modules/system/assets'
import { systemModule } from './modules/system'
import { sensorsModule } from './modules/sensors'
import { locationsModule } from './modules/locations'
import { readingsModule } from './modules/readings'
import { historyModule } from './modules/history'
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
import { variablesModule } from './modules/variables'
import { latestModule } from './modules/latest'
import { livenessModule } from './modules/liveness'
import { deviceKeysModule } from './modules/device-keys'
import { deviceKeyCheck } from './modules/device-keys/service'
import { webhooksModule } from './modules/webhooks'

export function createApp(ctx: AppContext) {
  const { config } = ctx
  const tokens = createTokens(config, ctx.revocations)
  const guard = createGuard(config, tokens, deviceKeyCheck(ctx.db, ctx.log))
  const app = new Elysia({
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
  return (
    app
      .use(errorHandler(ctx, (path) => allowedMethods(app.routes, path)))
      // First, so that its release after the response and its body reader cover every route.
      .use(requestLimits(config))
      .use(compression)
      .use(apiDocs(config, guard))
      .use(webAssets)
      .use(systemModule(ctx))
      .use(corsPolicy(config))
      .use(bodyLimit(config))
      .use(noNulText)
      .use(guard.policy)
      .use(authModule(ctx, tokens, guard))
      .use(usersModule(ctx, guard))
      .use(webhooksModule(ctx.webhooks.service, guard))
      .use(deviceKeysModule(ctx.db, guard))
      .use(realtimeRoutes(ctx, tokenAdmit(config, tokens, ctx.revocations)))
      .use(locationsModule(ctx))
      .use(sensorsModule(ctx))
      .use(historyModule(ctx))
      .use(readingsModule(ctx))
      .use(anomaliesModule(ctx))
      .use(predictionsModule(ctx))
      .use(thresholdsModule(ctx))
      .use(variablesModule(ctx))
      .use(latestModule(ctx))
      .use(livenessModule(ctx))
  )
}

export type App = ReturnType<typeof createApp>
