// Writes a transaction sends without waiting for their answer (PostgreSQL pipelines them with the
// statements after them), and the transaction's wait for them before COMMIT.
import type { Tx } from '.'

/** Writes sent in the transaction in progress on a handle and not waited for yet (see later()). */
const pendingWrites = new WeakMap<Tx, Promise<{ error: unknown } | undefined>[]>()

/**
 * A write of the transaction in progress whose answer nothing needs: on PostgreSQL it travels with the
 * statements sent after it instead of taking a round trip of its own. The transaction waits for it
 * before COMMIT, and its error, if it fails, is the transaction's.
 */
export function later(tx: Tx, write: Promise<unknown>) {
  let writes = pendingWrites.get(tx)
  if (!writes) pendingWrites.set(tx, (writes = []))
  // Settled into a value: a failure is looked at when the transaction ends, never left unhandled.
  writes.push(
    write.then(
      () => undefined,
      (error: unknown) => ({ error }),
    ),
  )
}

/**
 * Runs a transaction's body, then waits for its later() writes. When the body fails, a failed later()
 * write is the error to report: it came first (PostgreSQL refuses what follows it as "transaction
 * aborted").
 */
export async function withLaterWrites<T>(tx: Tx, fn: (tx: Tx) => Promise<T>): Promise<T> {
  let result: T
  try {
    result = await fn(tx)
  } catch (error) {
    await settle(tx)
    throw error
  }
  await settle(tx)
  return result
}

async function settle(tx: Tx) {
  const writes = pendingWrites.get(tx)
  if (!writes) return
  pendingWrites.delete(tx)
  for (const failed of await Promise.all(writes)) if (failed) throw failed.error
}
