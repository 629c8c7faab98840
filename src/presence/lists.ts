// Resource lists (RFC 4662): a client SUBSCRIBEs once to its user's contact list and gets every
// member's presence in each NOTIFY, as multipart/related (RFC 2387) of an RLMI document and one
// PIDF document per member. Pure: strings in, strings out.
//
// The list URI and the media types are in list-names.ts (shared with the client SDK).
//
// RFC 4662 §5: the body is multipart/related with type="application/rlmi+xml" and start naming
// the Content-ID of the RLMI part, which comes first; each <instance> names the part holding its
// resource's state with cid (the Content-ID without angle brackets). Parley sends full state every
// time (fullState="true"), and the version grows by one with each NOTIFY of the subscription.

import { createHash } from 'node:crypto';
import { escapeXmlAttr, escapeXmlText } from '../xml/index.ts';
import { MULTIPART_RELATED, NS_RLMI, RLMI_TYPE } from './list-names.ts';

export { EVENTLIST, LIST_SUFFIX, listOwner, listResource, MULTIPART_RELATED, NS_RLMI, RLMI_TYPE } from './list-names.ts';

/** Whether any of the header values names `tag` (Supported: eventlist, RFC 3261 §20.37). */
export function hasOptionTag(values: readonly string[], tag: string): boolean {
  return values.flatMap((v) => v.split(',')).some((t) => t.trim().toLowerCase() === tag);
}

export interface ListMember {
  /** `sip:bob@parley.local` */
  uri: string;
  /** the display name, when there is one */
  name: string | null;
  /** the member's PIDF document; null while its state is not known (a partner's user, remote.ts) */
  pidf: string | null;
  /**
   * RFC 4662 §5.2 instance state: `active` (default) with its PIDF part; `pending` while the
   * back-end subscription to a partner's user has no state yet; `terminated` with a `reason`
   * (`rejected`, `noresource`) when it was refused. Only an active instance with a PIDF has a part.
   */
  instance?: 'active' | 'pending' | 'terminated';
  reason?: string;
}

export interface ListDocument {
  contentType: string;
  body: string;
  /** the body without its version: what "unchanged" compares */
  key: string;
}

/** A short stable token for ids: the same input gives the same token. */
function token(text: string): string {
  return createHash('sha256').update(text).digest('base64url').slice(0, 12).replace(/[-_]/g, 'x');
}

/**
 * The NOTIFY body of a list subscription. `seed` (the subscription's id) makes the boundary and
 * the Content-IDs stable, so that the same state gives the same bytes.
 */
export function buildListDocument(opts: { listUri: string; domain: string; version: number; seed: string; members: readonly ListMember[] }): ListDocument {
  const rlmiCid = `rlmi-${token(opts.seed)}@${opts.domain}`;
  const members = opts.members.map((m) => ({ ...m, cid: m.pidf === null ? null : `${token(`${opts.seed}\n${m.uri}`)}@${opts.domain}`, id: token(m.uri) }));
  const parts = members.flatMap((m) => (m.pidf === null || m.cid === null ? [] : [{ cid: m.cid, pidf: m.pidf }]));
  const rlmi = (version: number) =>
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<list xmlns="${NS_RLMI}" uri="${escapeXmlAttr(opts.listUri)}" version="${version}" fullState="true">`,
      ...members.flatMap((m) => [
        `  <resource uri="${escapeXmlAttr(m.uri)}">`,
        ...(m.name === null || m.name === '' ? [] : [`    <name>${escapeXmlText(m.name)}</name>`]),
        `    <instance id="${m.id}" state="${m.instance ?? 'active'}"${m.reason === undefined ? '' : ` reason="${escapeXmlAttr(m.reason)}"`}${m.cid === null ? '' : ` cid="${m.cid}"`}/>`,
        '  </resource>',
      ]),
      '</list>',
      '',
    ].join('\r\n');
  const key = [rlmi(0), ...parts.map((p) => p.pidf)].join('\n');
  let boundary = `parley-list-${token(opts.seed)}`;
  while (key.includes(boundary)) boundary += 'x';
  const part = (cid: string, type: string, content: string) =>
    `--${boundary}\r\nContent-Transfer-Encoding: binary\r\nContent-ID: <${cid}>\r\nContent-Type: ${type};charset="UTF-8"\r\n\r\n${content}\r\n`;
  const body = [part(rlmiCid, RLMI_TYPE, rlmi(opts.version)), ...parts.map((p) => part(p.cid, 'application/pidf+xml', p.pidf)), `--${boundary}--\r\n`].join('');
  return {
    contentType: `${MULTIPART_RELATED};type="${RLMI_TYPE}";start="<${rlmiCid}>";boundary="${boundary}"`,
    body,
    key,
  };
}
