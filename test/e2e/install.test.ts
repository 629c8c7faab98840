// `parley` started the ways npm installs it, and `parley check-config`.
//
// The layouts are the ones npm 11 makes (seen with npm pack, then `npm install -g TARBALL
// --prefix`, `NPM_CONFIG_PREFIX=… npm link` and `npx --package TARBALL parley`), built here with
// symlinks over this checkout's node_modules: npm itself would need the registry (its cache does
// not hold every dependency) and a minute. PATH holds only the system's folders, whose node (if
// any) is not the pinned one: bin/parley must find its own Node through the links.
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';
import { sdkClients } from '../harness/clients.ts';
import { REPO_ROOT, startServer, type RunningServer } from '../harness/server.ts';
import { loadConfig } from '../../src/server/config.ts';
import { checkStartup } from '../../src/server/check-config.ts';

const root = mkdtempSync(path.join(tmpdir(), 'parley-install-'));
const modules = realpathSync(path.join(REPO_ROOT, 'node_modules'));
const ENV = { PATH: '/usr/bin:/bin', HOME: root, LANG: 'C' };

after(() => rmSync(root, { recursive: true, force: true }));

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(command: string, args: readonly string[]): Promise<Run> {
  return new Promise((resolve) => {
    execFile(command, args, { cwd: root, env: ENV, timeout: 30_000, encoding: 'utf8' }, (err, stdout, stderr) => {
      resolve({ code: err === null ? 0 : typeof err.code === 'number' ? err.code : null, stdout, stderr });
    });
  });
}

/** The files `npm pack` puts in the package (bin, src, package.json): a copy, as npm extracts it. */
function packageCopy(dir: string): void {
  mkdirSync(dir, { recursive: true });
  for (const part of ['bin', 'src', 'package.json']) cpSync(path.join(REPO_ROOT, part), path.join(dir, part), { recursive: true });
}

/** `npm install -g TARBALL --prefix P`: P/bin/parley -> ../lib/node_modules/parley/bin/parley, its dependencies inside it. */
function globalInstall(name = 'global'): string {
  const prefix = path.join(root, name);
  const pkg = path.join(prefix, 'lib', 'node_modules', 'parley');
  packageCopy(pkg);
  symlinkSync(modules, path.join(pkg, 'node_modules'));
  mkdirSync(path.join(prefix, 'bin'));
  symlinkSync('../lib/node_modules/parley/bin/parley', path.join(prefix, 'bin', 'parley'));
  return path.join(prefix, 'bin', 'parley');
}

/** `npm link` in a checkout: P/bin/parley -> ../lib/node_modules/parley/bin/parley, and that folder -> the checkout. */
function linked(): string {
  const prefix = path.join(root, 'linked');
  mkdirSync(path.join(prefix, 'lib', 'node_modules'), { recursive: true });
  symlinkSync(path.relative(path.join(prefix, 'lib', 'node_modules'), REPO_ROOT), path.join(prefix, 'lib', 'node_modules', 'parley'));
  mkdirSync(path.join(prefix, 'bin'));
  symlinkSync('../lib/node_modules/parley/bin/parley', path.join(prefix, 'bin', 'parley'));
  return path.join(prefix, 'bin', 'parley');
}

/** npx, or a dependency of a project: everything hoisted into one node_modules, .bin/parley -> ../parley/bin/parley. */
function hoisted(name: string, withNode: boolean): string {
  const nm = path.join(root, name, 'node_modules');
  packageCopy(path.join(nm, 'parley'));
  for (const dep of readdirSync(modules)) {
    if (dep === '.bin' || (dep === 'node' && !withNode)) continue;
    symlinkSync(path.join(modules, dep), path.join(nm, dep));
  }
  mkdirSync(path.join(nm, '.bin'));
  if (withNode) symlinkSync('../node/bin/node', path.join(nm, '.bin', 'node'));
  symlinkSync('../parley/bin/parley', path.join(nm, '.bin', 'parley'));
  return path.join(nm, '.bin', 'parley');
}

describe('bin/parley through the links npm makes', () => {
  const layouts: [string, () => string][] = [
    ['npm install -g', globalInstall],
    ['npm link', linked],
    ['npx (hoisted dependencies)', () => hoisted('npx', true)],
  ];
  for (const [name, make] of layouts) {
    it(`${name}: runs with the pinned Node`, async () => {
      const parley = make();
      const version = await run(parley, ['--version']);
      assert.equal(version.code, 0, version.stderr);
      assert.match(version.stdout, /^Parley\/\d+\.\d+\.\d+\n$/);
      // no warning of the type stripping (or anything else) on stderr
      assert.equal(version.stderr, '');
      const dataDir = path.join(root, `data-${name.replace(/\W+/g, '-')}`);
      const add = await run(parley, ['user', 'add', 'alice@parley.test', '--password', 'alice-pw', '--data-dir', dataDir]);
      assert.equal(add.code, 0, add.stderr);
      const list = await run(parley, ['user', 'list', '--data-dir', dataDir]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, /alice@parley\.test/);
    });
  }

  it('says which Node it misses when the node package is not installed', async () => {
    const r = await run(hoisted('no-node', false), ['--version']);
    assert.equal(r.code, 127);
    assert.match(r.stderr, /the pinned Node 24 \(npm package "node"\) is not installed/);
  });
});

describe('a server from the package under node_modules', () => {
  // bin/parley's node options, given to the harness's node: the worker thread that writes the
  // offline spool loads its own .ts file, which must be stripped there too
  let server: RunningServer | undefined;
  const people = sdkClients(() => server!, 'parley.test');
  after(async () => {
    await people.closeAll();
    await server?.stop();
  });

  it('stores a message to an offline user (the spool writer thread loads under node_modules)', async () => {
    const pkg = path.join(path.dirname(globalInstall('global-serve')), '..', 'lib', 'node_modules', 'parley');
    server = await startServer({
      cli: path.join(pkg, 'src', 'cli.ts'),
      env: { NODE_OPTIONS: `--import=${path.join(pkg, 'bin', 'strip-types.mjs')} --disable-warning=ExperimentalWarning` },
      users: [
        { address: 'alice@parley.test', password: 'alice-pw' },
        { address: 'bob@parley.test', password: 'bob-pw' },
      ],
    });
    const alice = await people.connect('alice');
    const res = await alice.sendMessage('sip:bob@parley.test', 'are you there?');
    assert.equal(res.status, 202, `${res.status} ${res.headers.get('warning')}\n${server.logs()}`);
    assert.match(res.headers.get('warning') ?? '', /bob@parley\.test is offline; stored/);
  });
});

describe('parley check-config', () => {
  const parley = path.join(REPO_ROOT, 'bin', 'parley');
  const dir = path.join(root, 'config');
  mkdirSync(dir);
  const config = (name: string, settings: object): string => {
    const file = path.join(dir, name);
    writeFileSync(file, JSON.stringify(settings));
    return file;
  };
  const certificate = (name: string): { cert: string; key: string } => {
    const cert = path.join(dir, `${name}.crt`);
    const key = path.join(dir, `${name}.key`);
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=parley.test', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    return { cert, key };
  };

  it('prints "configuration OK" and a summary, exits 0, starts nothing and writes nothing', async () => {
    const tls = certificate('good');
    const dataDir = path.join(dir, 'not-yet');
    const file = config('good.json', { domain: 'example.org', dataDir, tls, sipsPort: 5061 });
    const r = await run(parley, ['check-config', '--config', file, '--sip-port', '5070']);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^configuration OK\n/);
    assert.match(r.stdout, /domain: example\.org\n/);
    assert.match(r.stdout, /ports: sip 5070 \(UDP, TCP\), sips 5061 \(TLS\)/, 'the flags win over the file, as for serve');
    assert.match(r.stdout, /tls: on \(CN=parley\.test; valid until /);
    assert.match(r.stdout, new RegExp(`data dir: ${dataDir}\n`));
    assert.throws(() => realpathSync(dataDir), /ENOENT/, 'check-config does not create the data directory');
  });

  it('refuses a bad setting with the message serve gives, and exit code 2 as serve', async () => {
    const file = config('bad.json', { sip: { connections: { maxTotal: -1 } } });
    const check = await run(parley, ['check-config', '--config', file]);
    const serve = await run(parley, ['serve', '--config', file]);
    assert.equal(check.code, 2);
    assert.equal(serve.code, 2);
    assert.match(check.stderr, /^parley check-config: .*sip\.connections\.maxTotal/);
    assert.equal(check.stderr.replace('check-config', 'serve'), serve.stderr);
  });

  it('refuses a key that is not the certificate\'s, naming tls.key', async () => {
    const one = certificate('one');
    const other = certificate('other');
    const r = await run(parley, ['check-config', '--config', config('mismatch.json', { tls: { cert: one.cert, key: other.key } }), '--data-dir', dir]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^parley check-config: tls\.key: .* is not the private key of the certificate in tls\.cert/);
  });

  it('refuses an unreadable certificate and a data directory that is a file', async () => {
    const missing = await run(parley, ['check-config', '--config', config('missing.json', { tls: { cert: path.join(dir, 'nope.crt'), key: path.join(dir, 'nope.key') } }), '--data-dir', dir]);
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /tls\.cert: cannot read .*nope\.crt: ENOENT/);
    const file = path.join(dir, 'good.json');
    const notDir = await run(parley, ['check-config', '--data-dir', file]);
    assert.equal(notDir.code, 2);
    assert.match(notDir.stderr, /dataDir: .*good\.json exists but is not a directory/);
  });

  it('refuses a certificate that expired (or is not valid yet), naming tls.cert', () => {
    const tls = certificate('dated');
    const loaded = loadConfig(config('dated.json', { tls, dataDir: dir }), {});
    const day = 24 * 3600 * 1000;
    assert.throws(() => checkStartup(loaded, new Date(Date.now() + 3 * day)), /^ConfigError: tls\.cert: the certificate in .*dated\.crt expired on /);
    assert.throws(() => checkStartup(loaded, new Date(Date.now() - day)), /^ConfigError: tls\.cert: the certificate in .*dated\.crt is valid only from /);
  });
});

describe('contrib/parley.service', () => {
  const unit = readFileSync(path.join(REPO_ROOT, 'contrib', 'parley.service'), 'utf8');
  const analyze = ['/usr/bin/systemd-analyze', '/bin/systemd-analyze'].find((p) => existsSync(p));

  it('checks the configuration before it starts, and leaves V8 its W+X pages', () => {
    assert.match(unit, /^ExecStartPre=\/usr\/local\/bin\/parley check-config --config \/etc\/parley\/parley\.json --data-dir \/var\/lib\/parley$/m);
    assert.match(unit, /^ExecStart=\/usr\/local\/bin\/parley serve --config \/etc\/parley\/parley\.json --data-dir \/var\/lib\/parley$/m);
    assert.doesNotMatch(unit, /^MemoryDenyWriteExecute=/m);
  });

  it('passes systemd-analyze verify (its commands pointed at this checkout)', { skip: analyze === undefined && 'systemd-analyze is not installed' }, () => {
    // verify checks that each command exists: the unit's /usr/local/bin/parley is this checkout's bin/parley here
    const copy = path.join(root, 'parley.service');
    writeFileSync(copy, unit.replaceAll('/usr/local/bin/parley', path.join(REPO_ROOT, 'bin', 'parley')));
    const out = execFileSync(analyze!, ['verify', copy], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
    assert.equal(out, '');
  });
});

describe('output into a pipe closed early', () => {
  it('ends quietly with exit 0 when the reader stops reading (parley check-config | head -1)', () => {
    const dataDir = mkdtempSync(path.join(tmpdir(), 'parley-pipe-'));
    try {
      // `set -o pipefail` is not POSIX: the exit status of parley itself comes back through a file
      const status = path.join(dataDir, 'status');
      const script = `{ "${path.join(REPO_ROOT, 'bin', 'parley')}" check-config --data-dir "${dataDir}"; echo $? > "${status}"; } | head -1`;
      const out = execFileSync('sh', ['-c', script], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      assert.equal(out, 'configuration OK\n');
      assert.equal(readFileSync(status, 'utf8').trim(), '0', 'no unhandled EPIPE');
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
