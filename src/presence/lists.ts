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
  /** the member's PIDF document */
  pidf: string;
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
  const parts = opts.members.map((m) => ({ ...m, cid: `${token(`${opts.seed}\n${m.uri}`)}@${opts.domain}`, id: token(m.uri) }));
  const rlmi = (version: number) =>
    [
      '<?xml version="1.0" encoding="UTF-8"?>',
      `<list xmlns="${NS_RLMI}" uri="${escapeXmlAttr(opts.listUri)}" version="${version}" fullState="true">`,
      ...parts.flatMap((p) => [
        `  <resource uri="${escapeXmlAttr(p.uri)}">`,
        ...(p.name === null || p.name === '' ? [] : [`    <name>${escapeXmlText(p.name)}</name>`]),
        `    <instance id="${p.id}" state="active" cid="${p.cid}"/>`,
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
