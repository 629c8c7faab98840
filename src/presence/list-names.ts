// The names of resource lists (RFC 4662) that both ends use: the list URI of a user, the media
// types and the option tag. Pure and free of Node modules, so the client SDK (also built for the
// browser) shares them with the server instead of spelling them again.
//
// Each user's list has the URI `sip:<user>+contacts@<domain>`: `+` is never part of a user name
// (src/directory/address.ts refuses it), so a list URI cannot be a user's address.

export const LIST_SUFFIX = '+contacts';
export const RLMI_TYPE = 'application/rlmi+xml';
export const MULTIPART_RELATED = 'multipart/related';
export const NS_RLMI = 'urn:ietf:params:xml:ns:rlmi';
/** the option tag of RFC 4662 §4.1 (Supported / Require) */
export const EVENTLIST = 'eventlist';

/** `alice+contacts@parley.local` → `alice@parley.local`; undefined for any other resource. */
export function listOwner(resource: string): string | undefined {
  const at = resource.lastIndexOf('@');
  if (at < 0) return undefined;
  const user = resource.slice(0, at);
  if (!user.endsWith(LIST_SUFFIX) || user.length === LIST_SUFFIX.length) return undefined;
  return `${user.slice(0, -LIST_SUFFIX.length)}${resource.slice(at)}`;
}

/** `alice@parley.local` → `alice+contacts@parley.local`. */
export function listResource(owner: string): string {
  const at = owner.lastIndexOf('@');
  return `${owner.slice(0, at)}${LIST_SUFFIX}${owner.slice(at)}`;
}
