// `bun run user:password <username> [--generate]`: sets a user's password from the shell, on the database
// DATABASE_URL names (as the server reads it), through the users service the API uses.
//   echo 'a long passphrase' | bun run user:password admin   the new password from stdin
//   bun run user:password admin --generate                   a random one, printed on stdout
// A terminal on stdin (nothing piped) generates one too. Exit codes: 0 done, 1 no such user or no
// database, 2 bad usage or a password outside the rules.
import { existsSync } from 'node:fs'
import { Value } from '@sinclair/typebox/value'
import { loadConfig } from '../src/config'
import { openDatabase } from '../src/db'
import { AppError } from '../src/lib/errors'
import { createLogger } from '../src/lib/logger'
import { createRevocations } from '../src/modules/auth/revocations'
import { Password } from '../src/modules/users/model'
import { generatePassword, setPassword } from '../src/modules/users/service'

const USAGE =
  'Usage: bun run user:password <username> [--generate]  (the new password on stdin, or --generate for a random one)'

export async function main(argv: string[], stdin: { isTTY?: boolean; text(): Promise<string> }) {
  const args = argv.filter((arg) => arg !== '--generate')
  const generate = args.length !== argv.length || stdin.isTTY === true
  if (args.length !== 1 || args[0]!.startsWith('-')) {
    console.error(USAGE)
    return 2
  }
  const username = args[0]!
  // One trailing newline is the end of the line echo or a here-string adds, not part of the password.
  const password = generate ? generatePassword() : (await stdin.text()).replace(/\r?\n$/, '')
  const length = password.length
  if (!Value.Check(Password, password)) {
    console.error(`The password must be 8 to 256 characters (got ${length}); nothing was changed.`)
    return 2
  }
  let config
  try {
    config = loadConfig(process.env)
  } catch (error) {
    console.error(String(error instanceof Error ? error.message : error))
    return 2
  }
  const { database } = config
  if (database.kind === 'sqlite' && database.path !== ':memory:' && !existsSync(database.path)) {
    console.error(
      `No database at ${database.path}: run this from the server's folder, or set DATABASE_URL as the server has it.`,
    )
    return 1
  }
  const db = await openDatabase(database)
  try {
    // The revocation is a row every running server reads within a second: its old tokens stop working.
    const revocations = createRevocations(db, createLogger('silent'), config.jwt.expiresIn)
    await setPassword({ db, revocations }, username, password)
  } catch (error) {
    if (error instanceof AppError && error.status === 404) {
      console.error(`There is no user named "${username}"; nothing was changed.`)
      return 1
    }
    throw error
  } finally {
    await db.close()
  }
  console.error(`The password of "${username}" is changed.`)
  if (generate) console.log(password)
  return 0
}

if (import.meta.main) {
  const stdin = { isTTY: process.stdin.isTTY, text: () => Bun.stdin.text() }
  process.exit(await main(Bun.argv.slice(2), stdin))
}
