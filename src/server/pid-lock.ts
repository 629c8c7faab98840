// `<dataDir>/parley.pid`: which process serves a data directory. `parley serve` writes it at start
// and removes it when it stops; `parley restore` refuses to replace the database under a server
// that runs, and a second `serve` on the same directory refuses to start. A file left by a server
// that was killed (SIGKILL, power loss) names a process that no longer exists, and is taken over.
// (SQLite's own locks cannot tell: in WAL mode a connection holds no lock while idle.)
import { closeSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { ParleyError } from '../errors.ts';

export const PID_FILE = 'parley.pid';

export class ServerRunningError extends ParleyError {
  readonly pid: number;
  constructor(dataDir: string, pid: number) {
    super('SERVER_RUNNING', `a Parley server (process ${pid}) is running on the data directory ${dataDir}; stop it first (if no Parley runs there, remove ${join(dataDir, PID_FILE)})`);
    this.pid = pid;
  }
}

/** The process serving `dataDir`, or undefined when none does (no file, or its process is gone). */
export function runningServer(dataDir: string): number | undefined {
  let text: string;
  try {
    text = readFileSync(join(dataDir, PID_FILE), 'utf8');
  } catch {
    return undefined;
  }
  const pid = Number(text.trim());
  if (!Number.isSafeInteger(pid) || pid <= 0) return undefined;
  return alive(pid) ? pid : undefined;
}

/** Marks `dataDir` as served by this process; throws ServerRunningError when another live process does. Returns the release. */
export function lockDataDir(dataDir: string): () => void {
  const file = join(dataDir, PID_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    let fd: number;
    try {
      fd = openSync(file, 'wx', 0o600);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const other = runningServer(dataDir);
      if (other !== undefined && other !== process.pid) throw new ServerRunningError(dataDir, other);
      rmSync(file, { force: true }); // left by a server that is gone
      continue;
    }
    writeSync(fd, `${process.pid}\n`);
    closeSync(fd);
    return () => {
      // only our own: never a file another server wrote since
      if (runningServer(dataDir) === process.pid) rmSync(file, { force: true });
    };
  }
  throw new ServerRunningError(dataDir, runningServer(dataDir) ?? 0);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: it exists, under another user
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
