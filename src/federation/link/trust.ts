// The CAs partners' certificates must chain to (federation.ca): the PEM bundle, read at start and
// again on reload (SIGHUP); null in the config means node's bundled root CAs.

import { readFileSync } from 'node:fs';
import { ParleyError } from '../../errors.ts';
import type { Logger } from '../../observability/logger.ts';

export class PartnerCas {
  readonly #file: string | null;
  readonly #logger: Logger;
  #current: Buffer | undefined;

  /** Reads the bundle now; throws when it cannot be read (the start stops, naming the setting). */
  constructor(file: string | null, logger: Logger) {
    this.#file = file;
    this.#logger = logger;
    if (file === null) return;
    try {
      this.#current = readFileSync(file);
    } catch (err) {
      throw new ParleyError('FEDERATION_CA_UNREADABLE', `federation.ca: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
  }

  /** the bundle in use; undefined: the system's CAs */
  get current(): Buffer | undefined {
    return this.#current;
  }

  /** Reads the bundle again; true when it changed. An unreadable bundle is logged and the one in use stays. */
  reload(reason: string): boolean {
    if (this.#file === null) return false;
    let next: Buffer;
    try {
      next = readFileSync(this.#file);
    } catch (err) {
      this.#logger.error({ reason, file: this.#file }, 'federation.ca reload (%s) failed, the CAs in use stay: %s', reason, (err as Error).message);
      return false;
    }
    if (this.#current !== undefined && next.equals(this.#current)) return false;
    this.#current = next;
    this.#logger.info({ reason, file: this.#file }, 'federation.ca reloaded (%s): new partner connections are verified against %s', reason, this.#file);
    return true;
  }
}
