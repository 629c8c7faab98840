// The certificate in use by every TLS listener (SIP over TLS, HTTPS/WSS), and its reload: when the
// PEM files change (an editor, certbot or the ACME client replacing them) or on demand (SIGHUP), the
// new pair is read and checked, then handed to each listener's setSecureContext(): established
// connections keep the context they were made with, new handshakes get the new one. A pair that
// fails the checks is logged and the one in use stays: a half-written renewal never takes TLS down.

import { type FSWatcher, watch } from 'node:fs';
import path from 'node:path';
import type { SecureContextOptions } from 'node:tls';
import type { Logger } from '../observability/logger.ts';
import { type CertificatePair, CertificateError, type PairFiles, readPair } from './pair.ts';

/** A TLS listener whose certificate can be swapped (tls.Server, https.Server). */
export interface SecureContextTarget {
  setSecureContext(options: SecureContextOptions): void;
}

/** What the keeper reports, as it happens (src/observability/metrics.ts implements it). */
export interface CertificateStats {
  /** a pair is now in use (at start or after a reload) */
  certificateInUse(notAfter: Date): void;
  /** a reload's outcome: a new pair taken, the files unchanged, or the new pair refused */
  certificateReload(outcome: 'ok' | 'unchanged' | 'refused'): void;
}

/**
 * Editors and certbot replace a file by writing another and renaming it, and a renewal writes two
 * files: changes that come together are taken as one.
 */
const DEBOUNCE_MS = 300;

export class CertificateKeeper {
  readonly #files: Required<PairFiles>;
  readonly #logger: Logger;
  readonly #stats: CertificateStats | undefined;
  readonly #targets: SecureContextTarget[] = [];
  readonly #watchers: FSWatcher[] = [];
  #timer: NodeJS.Timeout | undefined;
  #current: CertificatePair;

  /** Reads and checks the pair now: throws CertificateError naming the setting when it is not usable. */
  constructor(opts: { files: PairFiles; logger: Logger; stats?: CertificateStats }) {
    this.#files = { certSetting: 'certificate', keySetting: 'key', ...opts.files };
    this.#logger = opts.logger;
    this.#stats = opts.stats;
    this.#current = readPair(this.#files);
    this.#stats?.certificateInUse(this.#current.notAfter);
  }

  get current(): CertificatePair {
    return this.#current;
  }

  /** The options for a new TLS listener: the pair in use. */
  secureContextOptions(): SecureContextOptions {
    return { cert: this.#current.cert, key: this.#current.key };
  }

  /** A listener to give every new pair to. */
  attach(target: SecureContextTarget): void {
    this.#targets.push(target);
  }

  /**
   * Reads the files again; a changed pair that passes the checks goes to every listener. Never
   * throws: a refused pair is logged and the old one kept.
   */
  reload(reason: string): 'ok' | 'unchanged' | 'refused' {
    let next: CertificatePair;
    try {
      next = readPair(this.#files);
    } catch (err) {
      const message = err instanceof CertificateError ? err.message : (err as Error).message;
      this.#logger.error({ reason, code: (err as CertificateError).code, notAfter: this.#current.notAfter.toISOString() }, 'certificate reload (%s) refused, the certificate in use stays (serial %s): %s', reason, this.#current.serialNumber, message);
      this.#stats?.certificateReload('refused');
      return 'refused';
    }
    if (next.cert.equals(this.#current.cert) && next.key.equals(this.#current.key)) {
      this.#logger.debug({ reason }, 'certificate reload (%s): files unchanged', reason);
      this.#stats?.certificateReload('unchanged');
      return 'unchanged';
    }
    const options = { cert: next.cert, key: next.key };
    for (const target of this.#targets) target.setSecureContext(options);
    const previous = this.#current;
    this.#current = next;
    this.#stats?.certificateReload('ok');
    this.#stats?.certificateInUse(next.notAfter);
    this.#logger.info(
      { reason, subject: next.subject, serial: next.serialNumber, notAfter: next.notAfter.toISOString(), previousSerial: previous.serialNumber },
      'certificate reloaded (%s): %s, serial %s, valid until %s; new TLS connections use it',
      reason,
      next.subject,
      next.serialNumber,
      next.notAfter.toISOString(),
    );
    return 'ok';
  }

  /**
   * Reloads when either file changes. The folders are watched, not the files: a file replaced by a
   * rename (certbot, editors, the ACME client) is a new file that a watch on the old one never
   * sees, while inotify on the folder reports writes in place and renames alike.
   */
  watch(): void {
    const names = new Map<string, Set<string>>();
    for (const file of [this.#files.cert, this.#files.key]) {
      const dir = path.dirname(path.resolve(file));
      const set = names.get(dir) ?? new Set<string>();
      set.add(path.basename(file));
      names.set(dir, set);
    }
    for (const [dir, files] of names) {
      try {
        const watcher = watch(dir, { persistent: false }, (_event, filename) => {
          if (filename === null || files.has(filename.toString())) this.#schedule();
        });
        watcher.on('error', (err) => this.#logger.warn({ err, dir }, 'watching %s for certificate changes failed: reload with SIGHUP', dir));
        this.#watchers.push(watcher);
      } catch (err) {
        this.#logger.warn({ err, dir }, 'cannot watch %s for certificate changes (%s): reload with SIGHUP', dir, (err as Error).message);
      }
    }
  }

  close(): void {
    clearTimeout(this.#timer);
    for (const w of this.#watchers) w.close();
    this.#watchers.length = 0;
  }

  #schedule(): void {
    clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.reload('file changed'), DEBOUNCE_MS);
    this.#timer.unref();
  }
}
