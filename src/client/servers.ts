// Which server the next connection goes to. The `server` option names one server or several (the
// nodes of a cluster); a tcp:// or tls:// host name with several DNS records counts as several
// (looked up by a resolver the Node entry lends; a browser has none). Servers are tried in order;
// a failed attempt or a lost connection moves on to the next, round robin, so that the clients of
// a dead node land on the others. The names are looked up anew at the start of each round, so a
// changed DNS answer is seen. No I/O of its own besides the resolver.

import type { ServerAddress, ServerResolver } from './transport.ts';

export class ServerRotation {
  readonly #configured: readonly ServerAddress[];
  readonly #resolve: ServerResolver | null;
  /** the configured servers, names expanded to their addresses by the last lookup */
  #targets: ServerAddress[];
  #next = 0;

  constructor(configured: readonly ServerAddress[], resolve: ServerResolver | null = null) {
    this.#configured = configured;
    this.#resolve = resolve;
    this.#targets = [...configured];
  }

  /** how many servers one round tries */
  get size(): number {
    return this.#targets.length;
  }

  /** The server the next attempt goes to, as known now (before the lookup a new round does). */
  get upcoming(): ServerAddress {
    return this.#targets[this.#next] as ServerAddress;
  }

  /** The server to try now: at the start of a round, after looking the names up again. */
  async take(): Promise<ServerAddress> {
    if (this.#next === 0 && this.#resolve !== null) {
      this.#targets = await expand(this.#configured, this.#resolve);
    }
    return this.#targets[this.#next] as ServerAddress;
  }

  /** The attempt at the server take() gave failed, or its connection was lost: the next one's turn. */
  advance(): void {
    this.#next = (this.#next + 1) % this.#targets.length;
  }
}

async function expand(configured: readonly ServerAddress[], resolve: ServerResolver): Promise<ServerAddress[]> {
  const lists = await Promise.all(
    configured.map(async (server) => {
      try {
        const addresses = await resolve(server);
        return addresses.length === 0 ? [server] : addresses;
      } catch {
        // tried as given: connecting to it reports the lookup failure in the attempt's error
        return [server];
      }
    }),
  );
  return lists.flat();
}
