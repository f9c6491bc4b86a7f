// System routes: /health, /metrics, the static pages in public/ (ETag, 304), and HTTP request metrics.
import { readdirSync } from 'node:fs'
import { join, relative, resolve } from 'node:path'
import { Elysia, StatusMap } from 'elysia'
import { staticFile } from '../../lib/http-standards'
import { VERSION } from '../../lib/version'
import type { AppContext } from '../../context'
import { Health } from './model'
import { health } from './service'

const PUBLIC_DIR = resolve(import.meta.dir, '../../../public')
const publicFiles = readdirSync(PUBLIC_DIR, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile())
  .map((entry) => relative(PUBLIC_DIR, join(entry.parentPath, entry.name)).split('\\').join('/'))

export const systemModule = (ctx: AppContext) => {
  const started = new WeakMap<Request, number>()
  const { metrics } = ctx
  return new Elysia({ name: 'system', detail: { tags: ['system'] } })
    .onRequest(({ request }) => {
      started.set(request, performance.now())
    })
    .onAfterResponse({ as: 'global' }, ({ request, route, set }) => {
      const start = started.get(request)
      if (start === undefined) return
      let status = typeof set.status === 'number' ? set.status : StatusMap[set.status ?? 'OK']
      if (status === 200 && request.headers.get('upgrade')?.toLowerCase() === 'websocket')
        status = 101
      // Unknown paths share one label so a scanner cannot blow up the series count.
      metrics.observeHttp(
        request.method,
        route || 'unmatched',
        status,
        (performance.now() - start) / 1000,
      )
    })
    .get(
      '/health',
      async ({ status }) => {
        const report = await health(ctx, VERSION)
        // Not ready only without a database; a degraded MQTT link leaves REST and sockets serving.
        return report.database.status === 'ok' ? report : status(503, report)
      },
      {
        response: { 200: Health, 503: Health },
        detail: {
          summary: 'Readiness: 200 once the database is migrated and sockets are accepted',
          description:
            'status is degraded (still 200) while MQTT ingestion is configured but not connected or cannot store; 503 when the database is down.',
        },
      },
    )
    .get(
      '/metrics',
      async ({ set }) => {
        set.headers['content-type'] = metrics.registry.contentType
        return metrics.registry.metrics()
      },
      { detail: { summary: 'Prometheus metrics', hide: true } },
    )
    .use((app) => {
      for (const file of publicFiles) {
        const serve = staticFile(join(PUBLIC_DIR, file))
        app.get(`/${file}`, ({ request }) => serve(request), { detail: { hide: true } })
        if (file === 'index.html')
          app.get('/', ({ request }) => serve(request), { detail: { hide: true } })
      }
      return app
    })
}
