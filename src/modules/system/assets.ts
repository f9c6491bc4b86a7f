// Browser code under /assets: the client library and the pages that use it, bundled by Bun on first request
// (no build step, no copy), and uPlot's and Leaflet's stylesheets (and Leaflet's images) from node_modules; ETag and compression on each.
import { dirname, join, resolve } from 'node:path'
import { Elysia } from 'elysia'
import { StaticContent, staticFile } from '../../lib/http-standards'

const SRC = resolve(import.meta.dir, '../..')
/** Served as /assets/client/index.js, /assets/web/websocket-client.js, /assets/web/dashboard.js, /assets/web/fleet.js. */
const ENTRIES = ['client/index.ts', 'web/websocket-client.ts', 'web/dashboard.ts', 'web/fleet.ts']
const uplotDir = dirname(Bun.resolveSync('uplot/package.json', import.meta.dir))
const leafletDir = join(dirname(Bun.resolveSync('leaflet/package.json', import.meta.dir)), 'dist')
const VENDOR: Record<string, string> = {
  'vendor/uPlot.min.css': join(uplotDir, 'dist/uPlot.min.css'),
  // Leaflet's stylesheet and the images it names (relative to it), for the fleet page's map.
  'vendor/leaflet.css': join(leafletDir, 'leaflet.css'),
  ...Object.fromEntries(
    [
      'layers.png',
      'layers-2x.png',
      'marker-icon.png',
      'marker-icon-2x.png',
      'marker-shadow.png',
    ].map((image) => [`vendor/images/${image}`, join(leafletDir, 'images', image)]),
  ),
}

let bundle: Promise<Map<string, Blob>> | undefined

/** One build for the process, shared chunks split out; a failed build is retried on the next request. */
export function browserBundle() {
  bundle ??= Bun.build({
    entrypoints: ENTRIES.map((entry) => join(SRC, entry)),
    root: SRC,
    target: 'browser',
    format: 'esm',
    splitting: true,
    minify: true,
    sourcemap: 'linked',
    naming: { entry: '[dir]/[name].[ext]', chunk: 'chunks/[name]-[hash].[ext]' },
  })
    .then((result) => {
      if (!result.success) throw new AggregateError(result.logs, 'browser bundle failed')
      return new Map<string, Blob>(
        result.outputs.map((output) => [output.path.replace(/^\.\//, ''), output]),
      )
    })
    .catch((error) => {
      bundle = undefined
      throw error
    })
  return bundle
}

const vendorFiles = new Map(
  Object.entries(VENDOR).map(([path, file]) => [path, staticFile(file, 'public, max-age=3600')]),
)
const bundled = new Map<Blob, Promise<StaticContent>>()

export const webAssets = new Elysia({ name: 'web-assets' }).get(
  '/assets/*',
  async ({ params, request, status }) => {
    const path = params['*']
    const vendor = vendorFiles.get(path)
    if (vendor) return vendor(request)
    const file = (await browserBundle()).get(path)
    if (!file)
      return status(404, { error: 'not_found', message: `No browser asset named ${path}.` })
    let content = bundled.get(file)
    if (!content) bundled.set(file, (content = StaticContent.of(file)))
    return (await content).respond(request)
  },
  { detail: { hide: true } },
)
