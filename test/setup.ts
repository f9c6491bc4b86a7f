// Preloaded by bun test: servers and subprocesses on a busy 2-core machine need more than 5 s per test.
import { setDefaultTimeout } from 'bun:test'

setDefaultTimeout(30_000)
