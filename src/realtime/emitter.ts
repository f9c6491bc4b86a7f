// The event emitter services use: events are logged in the transaction of the change and published after COMMIT.
import type { Database, Tx, WriteScope } from '../db'
import type { DomainEvent, SystemEventDraft, SystemEventMessage } from './envelope'
import { appendEvents, type Appended, type Draft, type StoredEvent } from './event-log'

export type Emit = (event: DomainEvent) => void
export type EmitSystem = (event: SystemEventDraft) => void

/**
 * Work that must follow events durably (webhook deliveries): written in the events' own transaction,
 * so a rolled-back change leaves none and a committed one always has its share.
 */
export interface Outbox {
  /** Inside the transaction, once the events have their seq; answers what to run after its COMMIT. */
  write(tx: Tx, appended: Appended): Promise<() => void>
}

export interface Emitter {
  /**
   * Runs a change in one transaction; the events it emits get their seq and are written in that
   * same transaction, then published once it commits. A rollback leaves no change and no event.
   * `system` emits a system_event in that same transaction.
   */
  transact<T>(
    fn: (tx: Tx, emit: Emit, system: EmitSystem) => Promise<T>,
    scope?: WriteScope,
  ): Promise<T>
  /** Emits a system_event (logged and published like any other). */
  system(event: SystemEventDraft): Promise<SystemEventMessage>
  /** Sets the outbox every transaction with events writes to. */
  useOutbox(outbox: Outbox): void
}

/** `commit` gets each transaction's events right after COMMIT (to publish them here and to the other instances). */
export function createEmitter(db: Database, commit: (stored: StoredEvent[]) => void): Emitter {
  let outbox: Outbox | undefined
  const append = async (tx: Tx, drafts: Draft[]) => {
    const appended = await appendEvents(tx, drafts)
    const committed =
      outbox && appended.stored.length > 0 ? await outbox.write(tx, appended) : undefined
    return { stored: appended.stored, committed }
  }
  const after = ({ stored, committed }: { stored: StoredEvent[]; committed?: () => void }) => {
    commit(stored)
    committed?.()
  }
  return {
    async transact(fn, scope) {
      const { result } = await db.transaction(
        async (tx) => {
          const drafts: Draft[] = []
          const result = await fn(
            tx,
            (event) => drafts.push({ kind: 'entity', event }),
            (event) => drafts.push({ kind: 'system', event }),
          )
          return { result, ...(await append(tx, drafts)) }
        },
        after,
        scope,
      )
      return result
    },
    async system(event) {
      const { stored } = await db.transaction(
        (tx) => append(tx, [{ kind: 'system', event }]),
        after,
      )
      return stored[0]!.message as SystemEventMessage
    },
    useOutbox(next) {
      outbox = next
    },
  }
}
