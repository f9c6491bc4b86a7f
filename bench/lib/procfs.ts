// What the kernel says about processes and the machine: RSS, CPU time, open-file limits, hardware.
import { readdirSync, readFileSync } from 'node:fs'

const read = (path: string) => readFileSync(path, 'utf8')

/** Resident set size in kB (VmRSS from /proc/<pid>/status). */
export function rssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(read(`/proc/${pid}/status`))
  return match ? Number(match[1]) : NaN
}

const TICKS_PER_SECOND = Number(
  Bun.spawnSync(['getconf', 'CLK_TCK']).stdout.toString().trim() || '100',
)

/** User + system CPU seconds in a /proc/<pid>/stat line (all the process's threads). */
function statCpu(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ')
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND
}

/** User + system CPU seconds a process (all its threads) has used. */
export function cpuSeconds(pid: number): number {
  try {
    return statCpu(read(`/proc/${pid}/stat`))
  } catch {
    return NaN
  }
}

/**
 * CPU seconds of a process with nanosecond resolution, per thread kind: each thread's run time from
 * /proc/<pid>/task/<tid>/schedstat, summed by thread name (digits dropped): `bun` is the event loop,
 * `JITWorker` JSC's compiler threads, the rest the collector, allocator and workers. Threads that already
 * exited are not counted, so use it over windows in which the process's threads stay up, as a server's do.
 */
export function cpuByThread(pid: number): Map<string, number> {
  const out = new Map<string, number>()
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const name = read(`/proc/${pid}/task/${tid}/comm`).trim().replace(/\d+$/, '')
        const ns = Number(read(`/proc/${pid}/task/${tid}/schedstat`).split(' ')[0])
        out.set(name, (out.get(name) ?? 0) + ns / 1e9)
      } catch {
        // The thread ended between the listing and the read.
      }
    }
  } catch {}
  return out
}

/** All of cpuByThread's threads together (cpuSeconds' coarser figure when the threads cannot be read). */
export function cpuPrecise(threads: Map<string, number>, pid: number): number {
  if (threads.size === 0) return cpuSeconds(pid)
  let seconds = 0
  for (const s of threads.values()) seconds += s
  return seconds
}

/** Busy and total CPU seconds of the whole machine, summed over cores. */
export function machineCpu(): { busy: number; total: number } {
  const [, ...values] = read('/proc/stat').split('\n')[0]!.trim().split(/\s+/)
  const n = values.slice(0, 8).map(Number)
  const total = n.reduce((a, b) => a + b, 0)
  const idle = n[3]! + n[4]!
  return { busy: (total - idle) / TICKS_PER_SECOND, total: total / TICKS_PER_SECOND }
}

export function openFileLimit(): { soft: number; hard: number } {
  const line = read('/proc/self/limits')
    .split('\n')
    .find((l) => l.startsWith('Max open files'))!
  const [soft, hard] = line
    .slice('Max open files'.length)
    .trim()
    .split(/\s+/)
    .map((v) => (v === 'unlimited' ? Infinity : Number(v)))
  return { soft: soft!, hard: hard! }
}

export function loadAverage(): number[] {
  return read('/proc/loadavg').split(' ').slice(0, 3).map(Number)
}

export function machine() {
  const cpuinfo = read('/proc/cpuinfo')
  const model = /model name\s*:\s*(.+)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown'
  const cores = cpuinfo.split('\n').filter((l) => l.startsWith('processor')).length
  const memKb = Number(/MemTotal:\s+(\d+)/.exec(read('/proc/meminfo'))?.[1])
  const hypervisor = /hypervisor/.test(cpuinfo)
  return {
    cpu: model,
    cores,
    memoryGiB: Math.round((memKb / 1024 / 1024) * 10) / 10,
    virtualized: hypervisor,
    kernel: read('/proc/sys/kernel/osrelease').trim(),
  }
}

export interface CpuWindow {
  seconds: number
  server: number
  generators: number[]
  orchestrator: number
  machine: number
  others: number
  /** PostgreSQL's processes (every one on the machine), when the window counts them; not in `others`. */
  database?: number
}

/** CPU seconds of every PostgreSQL process, by pid (a backend is a process of its own). */
function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>()
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    try {
      const stat = read(`/proc/${name}/stat`)
      if (stat.includes(' (postgres) ')) out.set(Number(name), statCpu(stat))
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return out
}

/**
 * Starts a CPU-accounting window; the result's figures are % of one core over the window. `server` may
 * be several processes (two instances), counted together.
 */
export function cpuWindow(
  serverPids: number | number[],
  generatorPids: number[],
  options: { database?: boolean } = {},
) {
  const servers = Array.isArray(serverPids) ? serverPids : [serverPids]
  // A backend that starts within the window counts from 0; one that ends within it is lost (rare: the
  // pools keep their connections through a phase).
  const d0 = options.database ? postgresCpu() : undefined
  const serverCpu = () => servers.reduce((a, pid) => a + cpuSeconds(pid), 0)
  const t0 = performance.now()
  const m0 = machineCpu()
  const s0 = serverCpu()
  const g0 = generatorPids.map(cpuSeconds)
  const o0 = cpuSeconds(process.pid)
  return (): CpuWindow => {
    const seconds = (performance.now() - t0) / 1000
    const m1 = machineCpu()
    const pct = (used: number) => Math.round((used / seconds) * 1000) / 10
    const server = pct(serverCpu() - s0)
    const generators = generatorPids.map((pid, i) => pct(cpuSeconds(pid) - g0[i]!))
    const orchestrator = pct(cpuSeconds(process.pid) - o0)
    const machineBusy = pct(m1.busy - m0.busy)
    let database: number | undefined
    if (d0) {
      let used = 0
      for (const [pid, cpu] of postgresCpu()) used += cpu - (d0.get(pid) ?? 0)
      database = pct(used)
    }
    const ours = server + generators.reduce((a, b) => a + b, 0) + orchestrator + (database ?? 0)
    return {
      seconds,
      server,
      generators,
      orchestrator,
      machine: machineBusy,
      others: Math.max(0, Math.round((machineBusy - ours) * 10) / 10),
      ...(database !== undefined && { database }),
    }
  }
}
