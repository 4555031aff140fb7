/**
 * The connect hook's own cost as the kernel measures it: with run-time statistics on (bpf_enable_stats,
 * held by this process and dropped when it exits, so the global sysctl kernel.bpf_stats_enabled is never
 * changed), the kernel adds each run's duration to the program's run_time_ns and counts run_cnt.
 * The program is found through the link the daemon pins at <pin-root>/links/connect4.
 * Statistics are on only while this measurement runs: they add two clock reads to every BPF program run.
 */
import { run } from './processes.mjs'

const BPF_MAPS = new URL('../../packages/bpf-maps/dist/index.js', import.meta.url)

async function programOfLink(linkPin) {
  const link = JSON.parse(await run(['bpftool', '-j', 'link', 'show', 'pinned', linkPin]))
  if (!link.prog_id) throw new Error(`bpftool link show pinned ${linkPin}: no prog_id in ${JSON.stringify(link)}`)
  return link.prog_id
}

async function programCounters(progId) {
  const prog = JSON.parse(await run(['bpftool', '-j', 'prog', 'show', 'id', String(progId)]))
  return { name: prog.name, runTimeNs: BigInt(prog.run_time_ns ?? 0), runCount: BigInt(prog.run_cnt ?? 0) }
}

/**
 * For each { label, linkPin, connect } runs `connect()` (a batch of connects through the hook) `batches`
 * times with statistics on, and answers ns per hook run of each batch from the difference of the counters:
 * the median and the lowest. run_time_ns also counts time the program spends preempted (a preemptible
 * kernel does not stop the scheduler inside a cgroup hook), so on a busy machine the lowest batch is the
 * closer estimate of the hook's own work.
 */
export async function hookCosts(cases, batches = 5) {
  const { setStatsEnabled } = await import(BPF_MAPS)
  const results = []
  setStatsEnabled(true)
  try {
    for (const c of cases) {
      const progId = await programOfLink(c.linkPin)
      const perBatch = []
      let runs = 0
      let name = ''
      for (let b = 0; b < batches; b++) {
        const before = await programCounters(progId)
        await c.connect()
        const after = await programCounters(progId)
        const n = after.runCount - before.runCount
        name = after.name
        if (n <= 0n) throw new Error(`${c.label}: program ${progId} (${name}) counted no runs; are statistics on?`)
        runs += Number(n)
        perBatch.push(Number(after.runTimeNs - before.runTimeNs) / Number(n))
      }
      perBatch.sort((x, y) => x - y)
      results.push({
        label: c.label,
        program: `${name} (id ${progId})`,
        runs,
        batches,
        medianNs: perBatch[batches >> 1],
        minNs: perBatch[0],
      })
    }
  } finally {
    setStatsEnabled(false)
  }
  return results
}
