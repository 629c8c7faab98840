// A pseudo-terminal for end-to-end tests of terminal programs: a detached tmux session on a
// private socket (nothing shared with a user's tmux), keys sent with send-keys, the screen read
// with capture-pane. Waits poll the screen until the text appears and fail with the screen shown.
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
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
  // remain-on-exit keeps the pane after the program ends, so its exit status can be read
  await tmux('new-session', '-d', '-s', 't', '-x', String(options.width ?? 80), '-y', String(options.height ?? 50), '--', ...command);
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
        const [dead, status, signal] = (await tmux('display-message', '-p', '-t', 't', '#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}')).stdout.trim().split('|');
        // the pane reads dead when the terminal closes, a moment before tmux has reaped the process
        if (dead === '1' && status !== undefined && status !== '') return Number(status);
        if (dead === '1' && signal !== undefined && signal !== '') throw new Error(`the program was killed by signal ${signal}; the screen:\n${await screen()}`);
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
