// The body of a resource-list NOTIFY (RFC 4662 §5) read into each member's presence. Pure.
//
// The body is multipart/related (RFC 2387) with type="application/rlmi+xml"; its root part (the
// one `start` names, else the first) is the RLMI document:
//
//   <list uri="sip:alice+contacts@parley.local" version="3" fullState="true">
//     <resource uri="sip:bob@parley.local">
//       <name>Bob Brown</name>
//       <instance id="x" state="active" cid="abc@parley.local"/>
//     </resource>
//   </list>
//
// Each <instance> with a cid names the part (by Content-ID, RFC 2392) that holds that instance's
// state, here a PIDF document. §5.2: with fullState="true" the document lists every resource;
// with "false" only those that changed since the previous version. An instance in state
// "terminated" no longer sends state (§5.2: reason "noresource"/"rejected"…): a resource whose
// instances have all ended has left the list.

import { parseContentType } from '../sip/pure.ts';
import { availabilityRank, parsePidf, PIDF_TYPE } from '../presence/pidf.ts';
import type { PresenceState } from '../presence/pidf.ts';
import { MULTIPART_RELATED, NS_RLMI, RLMI_TYPE } from '../presence/list-names.ts';
import { childElement, childElements, parseXml } from '../xml/index.ts';
import type { XmlElement } from '../xml/index.ts';
import { ClientError } from './errors.ts';
import { parseMultipart } from './multipart.ts';
import type { MimePart } from './multipart.ts';

export interface ListInstance {
  id: string;
  /** active, pending or terminated (RFC 4662 §5.2) */
  state: string;
  reason?: string;
  /** the Content-ID of the part with this instance's state */
  cid?: string;
}

export interface ListResourceState {
  /** `sip:bob@parley.local` as the RLMI document gives it */
  uri: string;
  /** the first <name>, when there is one */
  displayName?: string;
  instances: ListInstance[];
  /** the state of the most available instance with a PIDF part; undefined when none has state yet */
  presence?: PresenceState;
  /** every instance has ended: the resource left the list */
  ended: boolean;
}

export interface ListUpdate {
  uri: string;
  version: number;
  fullState: boolean;
  resources: ListResourceState[];
}

/** Reads a list NOTIFY; throws ClientError INVALID_BODY when the body is not RFC 4662's. */
export function parseListNotify(contentType: string, body: string): ListUpdate {
  let type;
  try {
    type = parseContentType(contentType);
  } catch (cause) {
    throw new ClientError('INVALID_BODY', `list NOTIFY Content-Type ${JSON.stringify(contentType)} does not parse`, { cause });
  }
  if (`${type.type}/${type.subtype}` !== MULTIPART_RELATED) throw new ClientError('INVALID_BODY', `list NOTIFY has Content-Type ${type.type}/${type.subtype}, not ${MULTIPART_RELATED}`);
  const boundary = type.params.get('boundary');
  if (boundary === undefined || boundary === null) throw new ClientError('INVALID_BODY', 'multipart/related NOTIFY has no boundary parameter');
  const parts = parseMultipart(body, boundary);
  // RFC 2387 §3.2: `start` names the root part; without it the root is the first part.
  const start = type.params.get('start');
  const rootId = start === undefined || start === null ? undefined : start.replace(/^<|>$/g, '');
  const root = rootId === undefined ? parts[0] : parts.find((p) => p.contentId === rootId);
  if (root === undefined) throw new ClientError('INVALID_BODY', rootId === undefined ? 'multipart/related NOTIFY has no parts' : `no part has the start Content-ID <${rootId}>`);
  if (mediaType(root.contentType) !== RLMI_TYPE) throw new ClientError('INVALID_BODY', `the root part is ${root.contentType}, not ${RLMI_TYPE}`);
  const byCid = new Map<string, MimePart>();
  for (const part of parts) if (part.contentId !== undefined) byCid.set(part.contentId, part);
  return readRlmi(root.body, byCid);
}

function readRlmi(xml: string, parts: ReadonlyMap<string, MimePart>): ListUpdate {
  let list: XmlElement;
  try {
    list = parseXml(xml);
  } catch (cause) {
    throw new ClientError('INVALID_BODY', 'the RLMI document is not well-formed XML', { cause });
  }
  if (list.ns !== NS_RLMI || list.name !== 'list') throw new ClientError('INVALID_BODY', `the RLMI root element is {${list.ns}}${list.name}, not {${NS_RLMI}}list`);
  const uri = list.attrs.get('uri');
  const version = Number(list.attrs.get('version'));
  const fullState = list.attrs.get('fullState');
  // §5.2: uri, version and fullState are mandatory attributes of <list>.
  if (uri === undefined) throw new ClientError('INVALID_BODY', '<list> has no uri attribute (RFC 4662 §5.2)');
  if (!Number.isSafeInteger(version) || version < 0) throw new ClientError('INVALID_BODY', `<list> version ${JSON.stringify(list.attrs.get('version') ?? null)} is not a non-negative integer (RFC 4662 §5.2)`);
  if (fullState !== 'true' && fullState !== 'false' && fullState !== '1' && fullState !== '0') throw new ClientError('INVALID_BODY', `<list> fullState ${JSON.stringify(fullState ?? null)} is not a boolean (RFC 4662 §5.2)`);
  const resources = childElements(list, NS_RLMI, 'resource').map((r) => readResource(r, parts));
  return { uri, version, fullState: fullState === 'true' || fullState === '1', resources };
}

function readResource(resource: XmlElement, parts: ReadonlyMap<string, MimePart>): ListResourceState {
  const uri = resource.attrs.get('uri');
  if (uri === undefined) throw new ClientError('INVALID_BODY', '<resource> has no uri attribute (RFC 4662 §5.2)');
  const instances: ListInstance[] = childElements(resource, NS_RLMI, 'instance').map((i) => {
    const id = i.attrs.get('id');
    const state = i.attrs.get('state');
    if (id === undefined || state === undefined) throw new ClientError('INVALID_BODY', `an <instance> of ${uri} lacks id or state (RFC 4662 §5.2)`);
    const instance: ListInstance = { id, state: state.toLowerCase() };
    const reason = i.attrs.get('reason');
    const cid = i.attrs.get('cid');
    if (reason !== undefined) instance.reason = reason;
    if (cid !== undefined) instance.cid = cid;
    return instance;
  });
  let presence: PresenceState | undefined;
  for (const instance of instances) {
    const part = instance.cid === undefined ? undefined : parts.get(instance.cid);
    // a part of another type (a nested list's multipart, say) carries no presence of its own here
    if (part === undefined || mediaType(part.contentType) !== PIDF_TYPE) continue;
    let state: PresenceState;
    try {
      state = parsePidf(part.body, uri);
    } catch (cause) {
      throw new ClientError('INVALID_BODY', `the PIDF document of ${uri} does not parse`, { cause });
    }
    if (presence === undefined || availabilityRank(state.state) < availabilityRank(presence.state)) presence = state;
  }
  const result: ListResourceState = { uri, instances, ended: instances.length > 0 && instances.every((i) => i.state === 'terminated') };
  const name = childElement(resource, NS_RLMI, 'name')?.text.trim();
  if (name !== undefined && name !== '') result.displayName = name;
  if (presence !== undefined) result.presence = presence;
  return result;
}

function mediaType(contentType: string): string {
  return (contentType.split(';')[0] ?? '').trim().toLowerCase();
}
