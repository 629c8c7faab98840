// Certificates from an ACME CA (RFC 8555: Let's Encrypt, or pebble in the tests) through acme-client,
// validated by HTTP-01 (RFC 8555 §8.3) on the plain HTTP port: the CA fetches
// http://<domain>/.well-known/acme-challenge/<token> (port 80, which the operator maps to the HTTP
// port) and expects the key authorization. The account key, the certificate and its key are kept
// owner-only in the data directory; a new certificate is written there and taken through the same
// reload as PEM files (keeper.ts). Renewal runs in the background before expiry, retried with
// growing waits; the certificate in use stays until a new one is issued.

import { Agent } from 'node:https';
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import type http from 'node:http';
import path from 'node:path';
// acme-client (and node-forge, its x509 and asn1 libraries) is loaded by the first order: ~36 MB of
// RSS a server without ACME never needs
const loadAcme = () => import('acme-client');
import type { Logger } from '../observability/logger.ts';
import { ParleyError } from '../errors.ts';
import { type CertificatePair, CertificateError, checkPair, readPair } from './pair.ts';

export interface AcmeSettings {
  directoryUrl: string;
  email?: string;
  /** the names the certificate is for; the first is its common name */
  domains: string[];
  /** where the account key is kept; default `<dataDir>/secrets/acme-account.pem` */
  accountKeyFile?: string;
  termsOfServiceAgreed: boolean;
  /** renew when the certificate expires within this many days */
  renewBeforeDays: number;
  /** PEM file of the CAs that sign the ACME server's own HTTPS certificate (a private CA, pebble's) */
  caBundle?: string;
}

/** Where the certificate, its key and the account key are kept. */
export interface AcmeFiles {
  cert: string;
  key: string;
  accountKey: string;
}

export const ACME_CHALLENGE_PREFIX = '/.well-known/acme-challenge/';

/** Waits between failed renewals: from 5 minutes, doubling, to 6 hours. */
const RETRY_MIN_MS = 5 * 60_000;
const RETRY_MAX_MS = 6 * 3600_000;
/** The background check runs at least this often, and (after an issuance) never sooner than the floor. */
const CHECK_MAX_MS = 12 * 3600_000;
const CHECK_FLOOR_MS = 3600_000;

export class AcmeError extends ParleyError {}

/**
 * The HTTP-01 tokens of the orders in progress, answered on the plain HTTP port. Only tokens this
 * server put there are answered: anything else under the prefix is 404.
 */
export class AcmeChallenges {
  readonly #tokens = new Map<string, string>();

  set(token: string, keyAuthorization: string): void {
    this.#tokens.set(token, keyAuthorization);
  }

  delete(token: string): void {
    this.#tokens.delete(token);
  }

  /** An HttpRoute (src/server/http.ts): GET /.well-known/acme-challenge/<token>. */
  handle(req: http.IncomingMessage, res: http.ServerResponse, url: URL): boolean {
    if (!url.pathname.startsWith(ACME_CHALLENGE_PREFIX)) return false;
    const token = url.pathname.slice(ACME_CHALLENGE_PREFIX.length);
    const answer = this.#tokens.get(token);
    if ((req.method !== 'GET' && req.method !== 'HEAD') || answer === undefined) {
      res.writeHead(404, { 'content-type': 'text/plain', 'cache-control': 'no-store' });
      res.end('no such ACME challenge\n');
      return true;
    }
    // RFC 8555 §8.3: the body is the key authorization, nothing else
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'cache-control': 'no-store' });
    res.end(req.method === 'HEAD' ? undefined : answer);
    return true;
  }
}

export class AcmeCertificates {
  readonly #settings: AcmeSettings;
  readonly #files: AcmeFiles;
  readonly #challenges: AcmeChallenges;
  readonly #logger: Logger;
  /** called once a new certificate is on disk: the keeper reloads it */
  readonly #onIssued: () => void;
  #timer: NodeJS.Timeout | undefined;
  #failures = 0;
  #running: Promise<boolean> | undefined;
  #closed = false;
  /** when this process last had a certificate issued (epoch ms) */
  #lastIssued = 0;

  constructor(opts: { settings: AcmeSettings; files: AcmeFiles; challenges: AcmeChallenges; logger: Logger; onIssued?: () => void }) {
    this.#settings = opts.settings;
    this.#files = opts.files;
    this.#challenges = opts.challenges;
    this.#logger = opts.logger;
    this.#onIssued = opts.onIssued ?? (() => {});
  }

  /** The stored certificate when it is usable now, else undefined. */
  stored(now = new Date()): CertificatePair | undefined {
    try {
      return readPair({ cert: this.#files.cert, key: this.#files.key, certSetting: 'acme (stored certificate)', keySetting: 'acme (stored key)' }, now);
    } catch (err) {
      if (err instanceof CertificateError) return undefined;
      throw err;
    }
  }

  /** When the stored certificate is due for renewal (epoch ms); 0 when there is none. */
  dueAt(): number {
    const pair = this.stored();
    return pair === undefined ? 0 : pair.notAfter.getTime() - this.#settings.renewBeforeDays * 86400_000;
  }

  /**
   * At start: a usable stored certificate is kept (renewed later in the background); without one,
   * one is ordered now (the HTTP port must be listening). Throws AcmeError when none can be had.
   */
  async ensure(): Promise<void> {
    if (this.stored() !== undefined) return;
    this.#logger.info({ domains: this.#settings.domains, directoryUrl: this.#settings.directoryUrl }, 'no usable ACME certificate stored: ordering one for %s', this.#settings.domains.join(', '));
    try {
      await this.#order();
    } catch (err) {
      throw new AcmeError('ACME_ORDER_FAILED', `acme: could not obtain a certificate for ${this.#settings.domains.join(', ')} from ${this.#settings.directoryUrl}: ${(err as Error).message}`, { cause: err });
    }
  }

  /** Starts the background renewal. */
  start(): void {
    this.#schedule(this.#nextCheckIn());
  }

  /**
   * Renews now when due (SIGHUP, the background check). Never throws: a failure is logged and
   * retried later. Resolves true when a new certificate was issued.
   */
  renewIfDue(reason: string): Promise<boolean> {
    this.#running ??= this.#renewIfDue(reason).finally(() => {
      this.#running = undefined;
    });
    return this.#running;
  }

  close(): void {
    this.#closed = true;
    clearTimeout(this.#timer);
  }

  async #renewIfDue(reason: string): Promise<boolean> {
    const due = this.dueAt();
    if (Date.now() < due) {
      this.#logger.debug({ reason, dueAt: new Date(due).toISOString() }, 'ACME certificate not due for renewal until %s', new Date(due).toISOString());
      this.#schedule(this.#nextCheckIn());
      return false;
    }
    this.#logger.info({ reason, domains: this.#settings.domains }, 'renewing the ACME certificate (%s)', reason);
    try {
      await this.#order();
      this.#failures = 0;
      this.#schedule(this.#nextCheckIn());
      return true;
    } catch (err) {
      const wait = Math.min(RETRY_MAX_MS, RETRY_MIN_MS * 2 ** this.#failures);
      this.#failures++;
      const stored = this.stored();
      this.#logger.error(
        { err, reason, attempt: this.#failures, retryInSeconds: wait / 1000, validUntil: stored?.notAfter.toISOString() },
        'ACME renewal failed (attempt %d): %s; retrying in %d s; the certificate in use is valid until %s',
        this.#failures,
        (err as Error).message,
        wait / 1000,
        stored?.notAfter.toISOString() ?? 'never (none stored)',
      );
      this.#schedule(wait);
      return false;
    }
  }

  /**
   * ms until the next background check: the due time, but at most CHECK_MAX_MS away (a clock
   * change, a certificate replaced by hand) and at least CHECK_FLOOR_MS after an issuance (a
   * renewBeforeDays longer than the CA's validity must not make a loop of orders).
   */
  #nextCheckIn(): number {
    const now = Date.now();
    const until = this.dueAt() - now;
    const floor = this.#lastIssued + CHECK_FLOOR_MS - now;
    return Math.min(CHECK_MAX_MS, Math.max(0, floor, until));
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => void this.renewIfDue('background check'), ms);
    this.#timer.unref();
  }

  /** One order: account, a fresh key and CSR, HTTP-01 for every name, then the files written. */
  async #order(): Promise<void> {
    const s = this.#settings;
    const acme = await loadAcme();
    if (s.caBundle !== undefined) {
      // acme-client talks through its own axios instance: the private CA is trusted there only
      acme.axios.defaults.httpsAgent = new Agent({ ca: readFileSync(s.caBundle) });
    }
    const client = new acme.Client({ directoryUrl: s.directoryUrl, accountKey: await this.#accountKey() });
    const [key, csr] = await acme.crypto.createCsr({ commonName: s.domains[0] as string, altNames: s.domains }, await acme.crypto.createPrivateEcdsaKey('P-256'));
    const chain = await client.auto({
      csr,
      ...(s.email !== undefined ? { email: s.email } : {}),
      termsOfServiceAgreed: s.termsOfServiceAgreed,
      challengePriority: ['http-01'],
      // acme-client would first fetch the token itself from port 80 of each name: the port the
      // operator maps may not be reachable from here; the CA's own check is the one that counts
      skipChallengeVerification: true,
      challengeCreateFn: async (_authz, challenge, keyAuthorization) => this.#challenges.set(challenge.token, keyAuthorization),
      challengeRemoveFn: async (_authz, challenge) => this.#challenges.delete(challenge.token),
    });
    const pair = checkPair(Buffer.from(chain), key, { cert: this.#files.cert, key: this.#files.key, certSetting: 'acme (issued certificate)', keySetting: 'acme (issued key)' });
    // the key first: a reload between the two renames sees a mismatch and keeps the old pair
    writeOwnerOnly(this.#files.key, key);
    writeOwnerOnly(this.#files.cert, Buffer.from(chain));
    this.#lastIssued = Date.now();
    if (pair.notAfter.getTime() - s.renewBeforeDays * 86400_000 <= this.#lastIssued) {
      this.#logger.warn({ renewBeforeDays: s.renewBeforeDays, notAfter: pair.notAfter.toISOString() }, 'acme.renewBeforeDays (%d) is longer than the new certificate is valid (until %s): it is renewed at every check', s.renewBeforeDays, pair.notAfter.toISOString());
    }
    this.#logger.info({ domains: s.domains, serial: pair.serialNumber, notAfter: pair.notAfter.toISOString() }, 'ACME certificate issued for %s: serial %s, valid until %s', s.domains.join(', '), pair.serialNumber, pair.notAfter.toISOString());
    this.#onIssued();
  }

  async #accountKey(): Promise<Buffer> {
    try {
      return readFileSync(this.#files.accountKey);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    const key = await (await loadAcme()).crypto.createPrivateEcdsaKey('P-256');
    writeOwnerOnly(this.#files.accountKey, key);
    this.#logger.info({ file: this.#files.accountKey }, 'new ACME account key written to %s', this.#files.accountKey);
    return key;
  }
}

/** Written whole, then renamed in place: readers see the old file or the new, never half of one. */
function writeOwnerOnly(file: string, content: Buffer): void {
  mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, content, { mode: 0o600 });
  renameSync(tmp, file);
}
