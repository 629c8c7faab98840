// Loads asked for in one burst share one query. A NOTIFY fan-out asks for the same owner's blocks
// (or list) once per watcher, all at once; when the cache was just emptied, each would otherwise
// send the same query and wait for its own answer.
//
// A load is shared only until the microtasks queued with it have run: the asks of one burst come
// in that window. One that began earlier may have been sent before a change that emptied the cache
// since, and must not answer for the emptied cache: the cache would keep its stale answer.

export function sharedLoads<K, V>(load: (key: K) => Promise<V>): (key: K) => Promise<V> {
  const pending = new Map<K, Promise<V>>();
  return (key) => {
    let loading = pending.get(key);
    if (loading === undefined) {
      loading = load(key);
      pending.set(key, loading);
      queueMicrotask(() => pending.delete(key));
    }
    return loading;
  };
}
