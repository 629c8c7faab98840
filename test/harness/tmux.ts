// A pseudo-terminal for end-to-end tests of terminal programs: a detached tmux session on a
// private socket (nothing shared with a user's tmux), keys sent with send-keys, the screen read
// with capture-pane. Waits poll the screen until the text appears and fail with the screen shown.
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const POLL_MS = 100;

export interface TerminalSession {
  /** text typed as is (send-keys -l), then Enter when `enter` */
  type(text: string, enter?: boolean): Promise<void>;
  /** tmux key names: 'C-d', 'C-c', 'Enter' */
  keys(...names: string[]): Promise<void>;
  /** the visible screen and its scrollback, as text */
  screen(): Promise<string>;
  /** polls the screen until `match` is on it; throws with the screen after `timeoutMs` */
  waitFor(match: RegExp | string, timeoutMs?: number): Promise<string>;
  /** polls until the program has exited; its exit status */
  exitStatus(timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export async function startTerminal(command: readonly string[], options: { width?: number; height?: number; env?: Record<string, string> } = {}): Promise<TerminalSession> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-tmux-'));
  const socket = path.join(dir, 'sock');
  const tmux = (...args: string[]) => run('tmux', ['-S', socket, ...args], { env: { ...process.env, ...options.env } });
  // The exit status goes to a file through a shell around the program: tmux's own
  // #{pane_dead_status} is sometimes left empty (seen with tmux 3.3a). remain-on-exit keeps the
  // pane, and so the screen, after the program ends.
  const statusFile = path.join(dir, 'status');
  await tmux('new-session', '-d', '-s', 't', '-x', String(options.width ?? 80), '-y', String(options.height ?? 50), '--', 'sh', '-c', '"$@"; echo "$?" > "$0"', statusFile, ...command);
  await tmux('set-option', '-t', 't', 'remain-on-exit', 'on');
  await tmux('set-option', '-t', 't', 'history-limit', '5000');
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 't')).stdout;
  const session: TerminalSession = {
    async type(text, enter = true) {
      await tmux('send-keys', '-t', 't', '-l', text);
      if (enter) await tmux('send-keys', '-t', 't', 'Enter');
    },
    async keys(...names) {
      await tmux('send-keys', '-t', 't', ...names);
    },
    screen,
    async waitFor(match, timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const text = await screen();
        if (typeof match === 'string' ? text.includes(match) : match.test(text)) return text;
        if (Date.now() > end) throw new Error(`the terminal did not show ${String(match)} within ${timeoutMs} ms; the screen:\n${text}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
    async exitStatus(timeoutMs = 10_000) {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const written = await readFile(statusFile, 'utf8').catch(() => '');
        if (/^\d+\n$/.test(written)) return Number(written);
        if (Date.now() > end) throw new Error(`the program did not exit within ${timeoutMs} ms; the screen:\n${await screen()}`);
        await new Promise((r) => setTimeout(r, POLL_MS));
      }
    },
    async close() {
      await tmux('kill-server').catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return session;
}
