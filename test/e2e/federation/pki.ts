// The federation tests' PKI, made with openssl in a temp dir: a test CA and leaves from it for
// sip.org-a.test … sip.org-d.test and an unrelated name (sip.other.test), each good for TLS server and
// client alike (mutual TLS); a second CA nobody trusts, with its own sip.org-b.test.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import path from 'node:path';

export interface CertFiles {
  cert: string;
  key: string;
}

export interface TestPki {
  dir: string;
  /** the trusted test CA's certificate (PEM file) */
  ca: string;
  /** the second CA, trusted by nobody */
  rogueCa: string;
  /** sip.org-a.test … sip.org-d.test and sip.other.test, from the test CA */
  leaf(name: string): CertFiles;
  /** sip.org-b.test from the rogue CA */
  rogue: CertFiles;
  /**
   * Another certificate for `name` from the test CA, with serial `serial`, in files of its own: a
   * renewal to put in place of a server's (`leaf(name)` is untouched).
   */
  issue(name: string, serial: number): CertFiles;
}

export const PKI_NAMES = ['sip.org-a.test', 'sip.org-b.test', 'sip.org-c.test', 'sip.org-d.test', 'sip.other.test'] as const;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: ['ignore', 'ignore', 'pipe'] });
}

function makeCa(dir: string, name: string, cn: string): CertFiles {
  const files = { cert: path.join(dir, `${name}.pem`), key: path.join(dir, `${name}.key`) };
  openssl(['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', `/CN=${cn}`,
    '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign', '-keyout', files.key, '-out', files.cert]);
  return files;
}

/** A leaf for `dns` (SAN DNS), usable as a TLS server and client alike (mutual TLS). */
function makeLeaf(dir: string, prefix: string, dns: string, ca: CertFiles, serial: number): CertFiles {
  const files = { cert: path.join(dir, `${prefix}${dns}.pem`), key: path.join(dir, `${prefix}${dns}.key`) };
  const csr = path.join(dir, `${prefix}${dns}.csr`);
  const ext = path.join(dir, `${prefix}${dns}.ext`);
  writeFileSync(ext, [`subjectAltName=DNS:${dns}`, 'basicConstraints=CA:FALSE', 'keyUsage=critical,digitalSignature,keyAgreement', 'extendedKeyUsage=serverAuth,clientAuth', ''].join('\n'));
  openssl(['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-subj', `/CN=${dns}`, '-keyout', files.key, '-out', csr]);
  openssl(['x509', '-req', '-in', csr, '-CA', ca.cert, '-CAkey', ca.key, '-set_serial', String(serial), '-days', '2', '-extfile', ext, '-out', files.cert]);
  return files;
}

export function makeTestPki(dir: string): TestPki {
  const ca = makeCa(dir, 'ca', 'Parley federation test CA');
  const rogueCa = makeCa(dir, 'rogue-ca', 'Parley untrusted test CA');
  const leaves = new Map<string, CertFiles>();
  PKI_NAMES.forEach((name, i) => leaves.set(name, makeLeaf(dir, '', name, ca, 100 + i)));
  const rogue = makeLeaf(dir, 'rogue-', 'sip.org-b.test', rogueCa, 200);
  return {
    dir,
    ca: ca.cert,
    rogueCa: rogueCa.cert,
    rogue,
    issue: (name, serial) => makeLeaf(dir, `issued-${serial}-`, name, ca, serial),
    leaf(name) {
      const f = leaves.get(name);
      if (!f) throw new Error(`no test certificate for ${name}`);
      return f;
    },
  };
}

/** `openssl verify` of a certificate against a CA file: its output ("…: OK") or the error. */
export function opensslVerify(ca: string, cert: string): { ok: boolean; output: string } {
  try {
    return { ok: true, output: execFileSync('openssl', ['verify', '-CAfile', ca, cert], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }) };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string };
    return { ok: false, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}
