// The federation environment's child processes (dnsmasq, Kamailio) and temp dirs: stopped and removed
// even when a test process ends without `stop()`; the tools they need, named when missing.
import { execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, rmSync } from 'node:fs';

/** how long a part of the environment may take to come up */
export const WAIT_MS = 15_000;

const children = new Set<ChildProcess>();
const tempDirs = new Set<string>();
let hooked = false;
function hook(): void {
  if (hooked) return;
  hooked = true;
  process.once('exit', () => {
    for (const c of children) c.kill('SIGKILL');
    for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  });
}

export function track(child: ChildProcess): void {
  hook();
  children.add(child);
  child.once('exit', () => children.delete(child));
}

/** a temp dir removed when the test process exits, unless `untrackDir` said it is gone already */
export function trackDir(dir: string): void {
  hook();
  tempDirs.add(dir);
}
export function untrackDir(dir: string): void {
  tempDirs.delete(dir);
}

/** SIGTERM, SIGKILL after 5 s; resolves once it exited */
export async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  child.kill('SIGTERM');
  const t = setTimeout(() => child.kill('SIGKILL'), 5_000);
  await exited;
  clearTimeout(t);
}

export const delay = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** An actionable error when a system tool of these tests is missing. */
export function requireInstalled(file: string, pkg: string): void {
  const found = file.startsWith('/') ? existsSync(file) : spawnSyncOk('sh', ['-c', `command -v ${file}`]);
  if (!found) throw new Error(`${file} is not installed (Debian package ${pkg}): run scripts/install-test-deps.sh`);
}
function spawnSyncOk(cmd: string, args: string[]): boolean {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

