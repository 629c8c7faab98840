// The terminal side of `parley chat`, on node:readline: a prompt line at the bottom, what arrives
// printed above it, the password read without echo. Works on a plain terminal or over SSH (no
// mouse, no full-screen mode); colours only on a TTY without NO_COLOR; not a TTY (a pipe) gives
// plain lines and no prompt.

import { clearLine, createInterface, cursorTo } from 'node:readline';
import type { Interface } from 'node:readline';
import { Writable } from 'node:stream';
import type { ChatScreen } from './session.ts';
import type { Style } from './render.ts';

export interface TerminalStreams {
  input: NodeJS.ReadableStream & { isTTY?: boolean };
  output: NodeJS.WritableStream & { isTTY?: boolean; columns?: number; on(event: 'resize', listener: () => void): unknown };
  env: Readonly<Record<string, string | undefined>>;
}

export type TerminalInput = { kind: 'line'; line: string } | { kind: 'interrupt' } | { kind: 'end' };

const MAX_WIDTH = 100;

/** An output that can stop echoing (while the password is typed); readline writes through it. */
class Muting extends Writable {
  muted = false;
  readonly #target: TerminalStreams['output'];

  constructor(target: TerminalStreams['output']) {
    super();
    this.#target = target;
    target.on('resize', () => this.emit('resize'));
  }

  get columns(): number | undefined {
    return this.#target.columns;
  }

  get isTTY(): boolean {
    return this.#target.isTTY === true;
  }

  override _write(chunk: Buffer | string, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.muted) callback();
    else this.#target.write(chunk, callback);
  }
}

export class TerminalScreen implements ChatScreen {
  readonly #streams: TerminalStreams;
  readonly #output: Muting;
  readonly #rl: Interface;
  readonly #tty: boolean;
  readonly #waiting: Array<(input: TerminalInput) => void> = [];
  readonly #queued: TerminalInput[] = [];
  #prompting = false;
  #ended = false;

  constructor(streams: TerminalStreams) {
    this.#streams = streams;
    this.#tty = streams.input.isTTY === true && streams.output.isTTY === true;
    this.#output = new Muting(streams.output);
    this.#rl = createInterface({ input: streams.input, output: this.#output, terminal: this.#tty, historySize: 200, prompt: '> ' });
    this.#rl.on('line', (line) => this.#push({ kind: 'line', line }));
    this.#rl.on('SIGINT', () => this.#push({ kind: 'interrupt' }));
    this.#rl.on('close', () => {
      this.#ended = true;
      this.#push({ kind: 'end' });
    });
  }

  style(): Style {
    const columns = this.#tty ? (this.#streams.output.columns ?? 80) : 80;
    return { width: Math.max(40, Math.min(columns, MAX_WIDTH)), color: this.#tty && (this.#streams.env.NO_COLOR ?? '') === '' && this.#streams.env.TERM !== 'dumb' };
  }

  /** The password, typed without echo (a TTY) or the first line (a pipe); null on Ctrl-C or Ctrl-D. */
  async askPassword(prompt: string): Promise<string | null> {
    this.#streams.output.write(prompt);
    this.#output.muted = this.#tty;
    const input = await this.next();
    this.#output.muted = false;
    if (this.#tty) this.#streams.output.write('\n');
    return input.kind === 'line' ? input.line : null;
  }

  /** The next line typed, Ctrl-C (interrupt) or Ctrl-D / end of input (end). */
  next(): Promise<TerminalInput> {
    const queued = this.#queued.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    if (this.#ended) return Promise.resolve({ kind: 'end' });
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  /** Starts showing the prompt (after sign-in). */
  startPrompt(): void {
    this.#prompting = true;
    if (this.#tty) this.#rl.prompt();
  }

  setPrompt(prompt: string): void {
    if (this.#ended) return;
    this.#rl.setPrompt(prompt);
    if (this.#prompting && this.#tty) this.#rl.prompt(true);
  }

  show(lines: readonly string[]): void {
    if (lines.length === 0) return;
    const text = `${lines.join('\n')}\n`;
    if (!this.#tty || !this.#prompting || this.#ended) {
      this.#streams.output.write(text);
      return;
    }
    // above the prompt: clear the line being typed, print, then draw prompt and typed text again
    clearLine(this.#streams.output as NodeJS.WritableStream, 0);
    cursorTo(this.#streams.output as NodeJS.WritableStream, 0);
    this.#streams.output.write(text);
    this.#rl.prompt(true);
  }

  close(): void {
    if (this.#prompting && this.#tty && !this.#ended) {
      clearLine(this.#streams.output as NodeJS.WritableStream, 0);
      cursorTo(this.#streams.output as NodeJS.WritableStream, 0);
    }
    this.#prompting = false;
    this.#rl.close();
  }

  #push(input: TerminalInput): void {
    const waiter = this.#waiting.shift();
    if (waiter !== undefined) waiter(input);
    else this.#queued.push(input);
  }
}
