// DavMail (Debian package davmail, an EWS-to-IMAP gateway; scripts/install-test-deps.sh installs
// it) started in server mode against a running Parley's EWS URL, and a minimal IMAP4rev1 client
// (RFC 3501) over node:net to talk to it.
//
//   const gateway = await startDavMail(`http://127.0.0.1:${port}/EWS/Exchange.asmx`);
//   const imap = await ImapSession.open(gateway.imapPort);
//   await imap.command('LOGIN "bob@parley.test" "bob-pw"');
//   ...
//   await gateway.stop();

import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

/** Absolute path of davmail, or null when it is not installed. */
export function findDavMail(): string | null {
  const r = spawnSync('sh', ['-c', 'command -v davmail'], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '' ? r.stdout.trim() : null;
}

export interface DavMail {
  imapPort: number;
  /** davmail.log so far (log level DEBUG for davmail: the EWS calls that failed) */
  log(): Promise<string>;
  stop(): Promise<void>;
}

/** A port the OS says is free now (DavMail takes its port from its properties file). */
export async function freePort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** Starts DavMail in server mode (no GUI, IMAP only, loopback only) and waits until it accepts IMAP connections. */
export async function startDavMail(ewsUrl: string, timeoutMs = 60_000): Promise<DavMail> {
  const davmail = findDavMail();
  if (davmail === null) throw new Error('davmail is not installed: run scripts/install-test-deps.sh');
  const dir = await mkdtemp(path.join(os.tmpdir(), 'parley-davmail-'));
  const imapPort = await freePort();
  const logFile = path.join(dir, 'davmail.log');
  const properties = [
    'davmail.server=true',
    'davmail.mode=EWS',
    `davmail.url=${ewsUrl}`,
    `davmail.imapPort=${imapPort}`,
    // only IMAP: the other listeners stay closed
    'davmail.popPort=',
    'davmail.smtpPort=',
    'davmail.caldavPort=',
    'davmail.ldapPort=',
    'davmail.bindAddress=127.0.0.1',
    'davmail.allowRemote=false',
    'davmail.enableKeepalive=false',
    'davmail.disableUpdateCheck=true',
    `davmail.logFilePath=${logFile}`,
    'log4j.rootLogger=WARN',
    'log4j.logger.davmail=DEBUG',
  ];
  const file = path.join(dir, 'davmail.properties');
  await writeFile(file, properties.join('\n') + '\n');
  const child: ChildProcess = spawn(davmail, [file], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, JAVA_TOOL_OPTIONS: '-Djava.awt.headless=true' } });
  let output = '';
  child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await exited;
    await rm(dir, { recursive: true, force: true });
  };
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`davmail exited ${child.exitCode} before listening:\n${output.slice(-4000)}`);
    if (/listening on IMAP port/.test(output) && (await canConnect(imapPort))) break;
    if (Date.now() > end) {
      await stop();
      throw new Error(`davmail did not listen on IMAP port ${imapPort} within ${timeoutMs} ms:\n${output.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { imapPort, log: () => readFile(logFile, 'utf8').catch(() => output), stop };
}

function canConnect(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}

export interface ImapResponse {
  /** OK, NO or BAD */
  status: string;
  /** the text after the status */
  text: string;
  /** the untagged responses, each with its literals inlined */
  untagged: string[];
}

/** One IMAP connection: sends tagged commands one at a time and reads up to the tagged response. */
export class ImapSession {
  readonly #socket: net.Socket;
  #buffer = Buffer.alloc(0);
  #waiting: (() => void) | undefined;
  #closed = false;
  #n = 0;
  /** the server's first line (* OK ...) */
  greeting = '';

  private constructor(socket: net.Socket) {
    this.#socket = socket;
  }

  static async open(port: number): Promise<ImapSession> {
    const socket = net.connect(port, '127.0.0.1');
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const pending = new ImapSession(socket);
    socket.on('data', (chunk: Buffer) => {
      pending.#buffer = Buffer.concat([pending.#buffer, chunk]);
      pending.#waiting?.();
    });
    socket.on('close', () => {
      pending.#closed = true;
      pending.#waiting?.();
    });
    socket.on('error', () => {});
    pending.greeting = await pending.#line();
    return pending;
  }

  /** Sends `TAG command` and returns the tagged status with the untagged responses before it. */
  async command(command: string, timeoutMs = 30_000): Promise<ImapResponse> {
    const tag = `t${++this.#n}`;
    this.#socket.write(`${tag} ${command}\r\n`);
    const untagged: string[] = [];
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const response = await this.#response(deadline);
      if (response.startsWith(`${tag} `)) {
        const [, status = '', text = ''] = /^\S+ (\S+) ?(.*)$/s.exec(response) ?? [];
        return { status, text, untagged };
      }
      untagged.push(response);
    }
  }

  close(): void {
    this.#socket.destroy();
  }

  /** One response line, with any literals ({N}\r\n + N bytes) it carries taken in whole. */
  async #response(deadline: number): Promise<string> {
    let out = '';
    for (;;) {
      const line = await this.#line(deadline);
      const literal = /\{(\d+)\}$/.exec(line);
      if (literal === null) return out + line;
      const size = Number(literal[1]);
      out += line + '\r\n' + (await this.#bytes(size, deadline)).toString('utf8');
    }
  }

  async #line(deadline = Date.now() + 30_000): Promise<string> {
    for (;;) {
      const end = this.#buffer.indexOf('\r\n');
      if (end >= 0) {
        const line = this.#buffer.subarray(0, end).toString('utf8');
        this.#buffer = this.#buffer.subarray(end + 2);
        return line;
      }
      await this.#more(deadline);
    }
  }

  async #bytes(size: number, deadline: number): Promise<Buffer> {
    while (this.#buffer.length < size) await this.#more(deadline);
    const out = this.#buffer.subarray(0, size);
    this.#buffer = this.#buffer.subarray(size);
    return out;
  }

  #more(deadline: number): Promise<void> {
    if (this.#closed) return Promise.reject(new Error(`the IMAP server closed the connection; unread: ${this.#buffer.toString('utf8').slice(0, 500)}`));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting = undefined;
        reject(new Error(`no IMAP answer in time; unread: ${this.#buffer.toString('utf8').slice(0, 500)}`));
      }, Math.max(0, deadline - Date.now()));
      this.#waiting = () => {
        clearTimeout(timer);
        this.#waiting = undefined;
        resolve();
      };
    });
  }
}
