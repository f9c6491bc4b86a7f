// `bun run cluster [N] [--port P]`: N instances (default 3) on ports P, P+1, … (default 8001) against one
// PostgreSQL and one Redis, for trying a deployment on one machine; Ctrl-C stops them all gracefully.
import postgres from 'postgres'

const args = process.argv.slice(2)
const flag = (name: string) => {
  const at = args.indexOf(name)
  return at >= 0 ? args.splice(at, 2)[1] : undefined
}
const basePort = Number(flag('--port') ?? 8001)
const count = Number(args[0] ?? 3)
if (!Number.isInteger(count) || count < 1 || count > 64) fail('N must be an integer from 1 to 64')
if (!Number.isInteger(basePort) || basePort < 1 || basePort + count - 1 > 65535)
  fail('--port must leave room for N consecutive ports below 65536')

const databaseUrl = process.env.DATABASE_URL || 'postgres://postgres@127.0.0.1:5432/vigia'
const redisUrl = process.env.REDIS_URL || 'redis://127.0.0.1:6379'
if (!/^postgres(ql)?:\/\//.test(databaseUrl))
  fail('DATABASE_URL must be postgres://… : instances share their data through PostgreSQL')
// Tokens must verify on every instance, so they share one secret.
const jwtSecret = process.env.JWT_SECRET || crypto.getRandomValues(new Uint8Array(32)).toHex()

function fail(message: string): never {
  process.stderr.write(`cluster: ${message}\n`)
  process.exit(2)
}

/** Creates the database when it does not exist yet (connecting to the server's `postgres` database). */
async function ensureDatabase(url: string) {
  const target = new URL(url)
  const name = decodeURIComponent(target.pathname.slice(1))
  const maintenance = new URL(url)
  maintenance.pathname = '/postgres'
  const sql = postgres(maintenance.toString(), { max: 1, onnotice: () => {} })
  try {
    const [found] = await sql`select 1 as found from pg_database where datname = ${name}`
    if (!found) {
      await sql.unsafe(`create database "${name.replace(/"/g, '""')}"`)
      process.stderr.write(`cluster: created database ${name}\n`)
    }
  } finally {
    await sql.end({ timeout: 1 })
  }
}

/** Copies a child's output line by line, each line tagged with the instance's port. */
async function tag(stream: ReadableStream<Uint8Array>, port: number, out: NodeJS.WriteStream) {
  const decoder = new TextDecoder()
  let rest = ''
  for await (const chunk of stream as unknown as AsyncIterable<Uint8Array>) {
    const lines = (rest + decoder.decode(chunk, { stream: true })).split('\n')
    rest = lines.pop()!
    for (const line of lines) out.write(`[${port}] ${line}\n`)
  }
  if (rest) out.write(`[${port}] ${rest}\n`)
}

await ensureDatabase(databaseUrl).catch((error) =>
  fail(`PostgreSQL at ${databaseUrl} is not usable: ${String(error)}`),
)

const instances = Array.from({ length: count }, (_, i) => {
  const port = basePort + i
  const child = Bun.spawn(['bun', `${import.meta.dir}/../src/index.ts`], {
    env: {
      // As `bun run start` runs an instance (docs/operations.md, "Memory").
      MIMALLOC_PURGE_DELAY: '-1',
      ...process.env,
      PORT: String(port),
      DATABASE_URL: databaseUrl,
      REDIS_URL: redisUrl,
      JWT_SECRET: jwtSecret,
      INSTANCE_ID: process.env.INSTANCE_ID ? `${process.env.INSTANCE_ID}-${port}` : `vigia-${port}`,
      // With MQTT ingestion on, each instance needs its own session and they share the subscription.
      ...(process.env.MQTT_URL && {
        MQTT_CLIENT_ID: `${process.env.MQTT_CLIENT_ID || 'vigia'}-${port}`,
        MQTT_TOPIC: process.env.MQTT_TOPIC || '$share/vigia/sensors/+/readings',
      }),
    },
    stdout: 'pipe',
    stderr: 'pipe',
  })
  void tag(child.stdout, port, process.stdout)
  void tag(child.stderr, port, process.stderr)
  return { port, child }
})
process.stderr.write(
  `cluster: ${count} instance(s) on ports ${basePort}-${basePort + count - 1} (database ${new URL(databaseUrl).pathname.slice(1)}, redis ${redisUrl}); Ctrl-C stops them\n`,
)

let stopping = false
const stop = (signal: string) => {
  if (stopping) return
  stopping = true
  process.stderr.write(`cluster: ${signal}, stopping every instance\n`)
  for (const { child } of instances) child.kill('SIGTERM')
}
process.on('SIGINT', () => stop('SIGINT'))
process.on('SIGTERM', () => stop('SIGTERM'))

const codes = await Promise.all(
  instances.map(async ({ port, child }) => {
    const code = await child.exited
    if (!stopping) {
      process.stderr.write(`cluster: instance on ${port} exited with ${code}\n`)
      stop('an instance exited')
    }
    return code
  }),
)
process.exit(codes.every((code) => code === 0) ? 0 : 1)
