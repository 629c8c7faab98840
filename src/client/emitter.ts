// A tiny typed event emitter. Not node:events, so the user agent core runs in a browser as is.
// Unlike Node's emitter, an 'error' event without a listener is dropped rather than thrown: the
// errors emitted here happen on timers and sockets, where a throw would only crash the host.

type Listener<A extends unknown[]> = (...args: A) => void;
type Stored = (...args: unknown[]) => void;

export class TypedEmitter<M extends { [K in keyof M]: unknown[] }> {
  readonly #listeners = new Map<keyof M, Stored[]>();

  on<K extends keyof M>(event: K, listener: Listener<M[K]>): this {
    const list = this.#listeners.get(event) ?? [];
    list.push(listener as unknown as Stored);
    this.#listeners.set(event, list);
    return this;
  }

  once<K extends keyof M>(event: K, listener: Listener<M[K]>): this {
    const wrapper: Listener<M[K]> = (...args) => {
      this.off(event, wrapper);
      listener(...args);
    };
    return this.on(event, wrapper);
  }

  off<K extends keyof M>(event: K, listener: Listener<M[K]>): this {
    const list = this.#listeners.get(event);
    if (list === undefined) return this;
    const at = list.indexOf(listener as unknown as Stored);
    if (at >= 0) list.splice(at, 1);
    if (list.length === 0) this.#listeners.delete(event);
    return this;
  }

  listenerCount<K extends keyof M>(event: K): number {
    return this.#listeners.get(event)?.length ?? 0;
  }

  /** Calls the listeners in order; returns whether there was any. */
  protected emit<K extends keyof M>(event: K, ...args: M[K]): boolean {
    const list = this.#listeners.get(event);
    if (list === undefined) return false;
    for (const listener of [...list]) listener(...args);
    return true;
  }
}
