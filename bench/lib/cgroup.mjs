import { existsSync, rmdirSync } from 'node:fs'

/** rmdir a cgroup, retrying while a client that was interrupted is still leaving it (EBUSY). */
export async function removeCgroup(path) {
  for (let attempt = 0; existsSync(path); attempt++) {
    try {
      rmdirSync(path)
    } catch (err) {
      if (err.code !== 'EBUSY' || attempt >= 50) throw err
      await new Promise((r) => setTimeout(r, 100))
    }
  }
}
