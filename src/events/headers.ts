// Header fields of the event framework (RFC 6665 §8.2) and Accept (RFC 3261 §20.1). Pure.

/**
 * The package of an Event header (RFC 6665 §8.2.1: `Event: presence;id=x`), lower-cased, or
 * undefined when there is none. Template packages (`presence.winfo`) are other packages.
 */
export function eventPackage(value: string | undefined): string | undefined {
  if (value === undefined) return undefined;
  const name = value.split(';')[0]?.trim().toLowerCase();
  return name === '' ? undefined : name;
}

/** Expires as delta-seconds (RFC 3261 §20.19): undefined when absent, null when malformed. */
export function expiresOf(value: string | undefined): number | undefined | null {
  if (value === undefined) return undefined;
  const text = value.trim();
  if (!/^\d{1,10}$/.test(text)) return null;
  return Math.min(Number.parseInt(text, 10), 2 ** 32 - 1);
}

/**
 * Whether the Accept header values admit `type` (`application/pidf+xml`): RFC 3261 §20.1, an
 * absent or empty Accept admits the package's default type; otherwise the type, `application/*`
 * or `*\/*` must be listed (parameters such as q are ignored).
 */
export function acceptsType(accept: readonly string[], type: string): boolean {
  const ranges = accept.flatMap((a) => a.split(',')).map((r) => (r.split(';')[0] ?? '').trim().toLowerCase()).filter((r) => r !== '');
  if (ranges.length === 0) return true;
  const wanted = type.toLowerCase();
  const major = wanted.split('/')[0];
  return ranges.some((r) => r === wanted || r === `${major}/*` || r === '*/*');
}
