// Serves the Swagger UI assets from the swagger-ui-dist package, so /swagger works without internet.
import { dirname, join } from 'node:path'
import { Elysia, t } from 'elysia'

const distDir = dirname(Bun.resolveSync('swagger-ui-dist/package.json', import.meta.dir))
const ASSETS = new Set([
  'swagger-ui-bundle.js',
  'swagger-ui.css',
  'swagger-ui-bundle.js.map',
  'swagger-ui.css.map',
])

export const docsAssets = new Elysia({ name: 'docs-assets' }).get(
  '/swagger/assets/:file',
  ({ params, status }) =>
    ASSETS.has(params.file)
      ? Bun.file(join(distDir, params.file))
      : status(404, {
          error: 'not_found',
          message: `No documentation asset named ${params.file}.`,
        }),
  { params: t.Object({ file: t.String() }), detail: { hide: true } },
)
