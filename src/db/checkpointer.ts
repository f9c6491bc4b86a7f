// A worker thread that checkpoints the SQLite write-ahead log beside the server: copying the WAL into the
// database file and syncing it takes milliseconds to tens of them, which the writer would otherwise pay
// inside a COMMIT on the event loop (every 1,000 pages by default). PASSIVE checkpoints never block
// the writer; the writer keeps a high automatic checkpoint as a safety net should this one fall behind.
import { Database } from 'bun:sqlite'

declare const self: Worker

const EVERY_MS = 100

let db: Database | undefined
let timer: Timer | undefined

self.onmessage = (event: MessageEvent<{ path: string } | 'stop'>) => {
  if (event.data === 'stop') {
    clearInterval(timer)
    try {
      db?.run('PRAGMA wal_checkpoint(PASSIVE)')
    } catch {}
    db?.close()
    db = undefined
    self.postMessage('stopped')
    return
  }
  db = new Database(event.data.path)
  db.run('PRAGMA busy_timeout = 5000')
  const checkpoint = db.prepare('PRAGMA wal_checkpoint(PASSIVE)')
  timer = setInterval(() => {
    try {
      checkpoint.run()
    } catch {
      // Busy or closing: the next tick tries again.
    }
  }, EVERY_MS)
  self.postMessage('ready')
}
