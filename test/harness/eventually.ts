// Polling for what a running server does in its own time (a spooler delivering, a mailbox filling).

/**
 * Calls `probe` (every 250 ms) until it returns something other than undefined, and returns that; throws
 * `timed out waiting for <what>` once `timeoutMs` has passed.
 */
export async function eventually<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}
