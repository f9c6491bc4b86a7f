// The event emitter services use: events are logged in the transaction of the change and published after COMMIT.
import type { Database, Tx } from '../db'
import type { DomainEvent, SystemEventDraft, SystemEventMessage } from './envelope'
import { appendEvents, type Draft, type StoredEvent } from './event-log'

export type Emit = (event: DomainEvent) => void

export interface Emitter {
  /**
   * Runs a change in one transaction; the events it emits get their seq and are written in that
   * same transaction, then published once it commits. A rollback leaves no change and no event.
   */
  transact<T>(fn: (tx: Tx, emit: Emit) => Promise<T>): Promise<T>
  /** Emits a system_event (logged and published like any other). */
  system(event: SystemEventDraft): Promise<SystemEventMessage>
}

/** `commit` gets each transaction's events right after COMMIT (to publish them here and to the other instances). */
export function createEmitter(db: Database, commit: (stored: StoredEvent[]) => void): Emitter {
  return {
    async transact(fn) {
      const { result } = await db.transaction(
        async (tx) => {
          const drafts: Draft[] = []
          const result = await fn(tx, (event) => drafts.push({ kind: 'entity', event }))
          return { result, stored: await appendEvents(tx, drafts) }
        },
        ({ stored }) => commit(stored),
      )
      return result
    },
    async system(event) {
      const [stored] = await db.transaction(
        (tx) => appendEvents(tx, [{ kind: 'system', event }]),
        commit,
      )
      return stored!.message as SystemEventMessage
    },
  }
}
