// close() leaves nothing that keeps the process alive: a child process must end by itself.
import t from 'tap';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const child = fileURLToPath(new URL('./fixtures/exit-child.ts', import.meta.url));
// the TypeScript loader tap runs us with, so the child can run .ts too
const loader = process.execArgv.filter((a) => a.includes('@tapjs/typescript') || a.includes('tsx') || a.includes('ts-node'));

function run(mode: string, timeoutMs = 20_000): Promise<{ code: number | null; out: string; ms: number }> {
  return new Promise((resolve) => {
    const start = performance.now();
    const p = spawn(process.execPath, [...loader, child, mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => (out += d.toString()));
    p.stderr.on('data', (d: Buffer) => (out += d.toString()));
    const timer = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, out, ms: performance.now() - start });
    });
  });
}

for (const mode of ['synced', 'backoff', 'abort-in-handler']) {
  t.test(`process exits by itself after close() (${mode})`, async (t) => {
    const r = await run(mode);
    t.equal(r.code, 0, r.out);
    t.match(r.out, `closed ${mode}`);
  });
}
