// Fresh PostgreSQL databases for the bench on the shared server (127.0.0.1:5432, trust auth): one per
// start, named vigia_bench_<pid>_<n>, dropped afterwards; the shared Redis is used with a fresh prefix.
import postgres from 'postgres'

export const PG_SERVER = 'postgres://postgres@127.0.0.1:5432'
export const REDIS_URL = 'redis://127.0.0.1:6379'

let counter = 0

async function admin<T>(run: (sql: postgres.Sql) => Promise<T>): Promise<T> {
  const sql = postgres(`${PG_SERVER}/postgres`, { max: 1, onnotice: () => {}, connect_timeout: 5 })
  try {
    return await run(sql)
  } finally {
    await sql.end({ timeout: 2 })
  }
}

export interface FreshDatabase {
  name: string
  url: string
  drop(): Promise<void>
}

export async function freshDatabase(): Promise<FreshDatabase> {
  const name = `vigia_bench_${process.pid}_${++counter}`
  await admin((sql) => sql.unsafe(`create database ${name}`))
  return {
    name,
    url: `${PG_SERVER}/${name}`,
    drop: () =>
      admin((sql) => sql.unsafe(`drop database if exists ${name} with (force)`)).then(
        () => undefined,
      ),
  }
}

/** Whether the shared PostgreSQL answers; the PostgreSQL phases skip with this reason otherwise. */
export async function postgresReachable(): Promise<string | undefined> {
  try {
    await admin((sql) => sql`select 1`)
    return undefined
  } catch (error) {
    return `PostgreSQL at ${PG_SERVER} is not reachable (${String(error).slice(0, 120)})`
  }
}

export const redisPrefix = () => `vigia-bench-${process.pid}-${++counter}`
