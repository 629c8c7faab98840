// PIDF (RFC 3863) documents with RPID activities (RFC 4480) and the data model (RFC 4479):
// parse what a client publishes into one of Parley's six states, and build the document a
// watcher receives. Pure: strings in, values out.
//
// The states (Skype for Business's familiar ones) and how they map onto the wire:
//
// | state          | <basic>  | <rpid:activities>                     | also read as this state          |
// |----------------|----------|---------------------------------------|----------------------------------|
// | Available      | open     | (none)                                | open with no/unknown activities  |
// | Busy           | open     | <busy/>                               | on-the-phone, meeting,           |
// |                |          |                                       | appointment, presentation,       |
// |                |          |                                       | performance                      |
// | Do Not Disturb | open     | <busy/><other>do-not-disturb</other>  | <other> "dnd"/"do not disturb"   |
// | Be Right Back  | open     | <away/><other>be-right-back</other>   | <other> "brb"/"be right back"    |
// | Away           | open     | <away/>                               | vacation, holiday, sleeping,     |
// |                |          |                                       | meal, breakfast, dinner, travel, |
// |                |          |                                       | in-transit, permanent-absence    |
// | Offline        | closed   | (none)                                | any document whose tuples are    |
// |                |          |                                       | all closed                       |
//
// A client that knows only plain RPID still sees DND as busy and BRB as away. The free-text note
// travels in <note> of the tuple (RFC 3863 §4.1.6) and <dm:note> of the person (RFC 4479 §6.2).

import { childElement, childElements, escapeXmlAttr, escapeXmlText, parseXml, XmlError } from '../xml/index.ts';
import type { XmlElement } from '../xml/index.ts';
import { PresenceError } from './errors.ts';

export const PIDF_TYPE = 'application/pidf+xml';
export const NS_PIDF = 'urn:ietf:params:xml:ns:pidf';
export const NS_RPID = 'urn:ietf:params:xml:ns:pidf:rpid';
export const NS_DM = 'urn:ietf:params:xml:ns:pidf:data-model';

export const PRESENCE_STATES = ['Available', 'Busy', 'Do Not Disturb', 'Be Right Back', 'Away', 'Offline'] as const;
export type PresenceStateName = (typeof PRESENCE_STATES)[number];

/** What Parley knows of a presentity, or of one device's publication. */
export interface PresenceState {
  state: PresenceStateName;
  /** free text for people, '' when none */
  note: string;
}

export const OFFLINE: PresenceState = Object.freeze({ state: 'Offline', note: '' });

/** Largest note kept; longer ones are cut (a status line, not a letter). */
export const MAX_NOTE_CHARS = 1024;

const BUSY_ACTIVITIES = new Set(['busy', 'on-the-phone', 'meeting', 'appointment', 'presentation', 'performance']);
const AWAY_ACTIVITIES = new Set(['away', 'vacation', 'holiday', 'sleeping', 'meal', 'breakfast', 'dinner', 'travel', 'in-transit', 'permanent-absence']);
const DND_OTHER = /^\s*(dnd|do[\s-]*not[\s-]*disturb)\s*$/i;
const BRB_OTHER = /^\s*(brb|be[\s-]*right[\s-]*back)\s*$/i;

/**
 * Reads a published PIDF document. Throws PresenceError BAD_PIDF (a 400 with the reason as
 * Warning) when it is not well-formed XML or not a valid PIDF document for `entity`.
 */
export function parsePidf(body: string | Uint8Array, entity: string): PresenceState {
  let root: XmlElement;
  try {
    root = parseXml(body);
  } catch (err) {
    if (err instanceof XmlError) throw new PresenceError('BAD_PIDF', `not a PIDF document: ${err.message}`, { cause: err });
    throw err;
  }
  // RFC 3863 §4.1.1: the root is <presence> in the PIDF namespace, with an entity attribute (§4.1.2).
  if (root.ns !== NS_PIDF || root.name !== 'presence') throw new PresenceError('BAD_PIDF', `the root element is {${root.ns}}${root.name}, not {${NS_PIDF}}presence`);
  const docEntity = root.attrs.get('entity');
  if (docEntity === undefined) throw new PresenceError('BAD_PIDF', '<presence> has no entity attribute (RFC 3863 §4.1.2)');
  if (addressPart(docEntity) !== addressPart(entity)) throw new PresenceError('BAD_PIDF', `entity ${docEntity} is not the publisher ${entity}`);

  const tuples = childElements(root, NS_PIDF, 'tuple');
  let open = false;
  for (const tuple of tuples) {
    // §4.1.3: a tuple has an id and a <status>; §4.1.4: <basic> is "open" or "closed".
    if (!tuple.attrs.has('id')) throw new PresenceError('BAD_PIDF', '<tuple> has no id attribute (RFC 3863 §4.1.3)');
    const status = childElement(tuple, NS_PIDF, 'status');
    if (status === undefined) throw new PresenceError('BAD_PIDF', `<tuple id="${tuple.attrs.get('id')}"> has no <status> (RFC 3863 §4.1.4)`);
    const basic = childElement(status, NS_PIDF, 'basic');
    if (basic !== undefined) {
      const value = basic.text.trim();
      if (value !== 'open' && value !== 'closed') throw new PresenceError('BAD_PIDF', `<basic> is "${value.slice(0, 40)}", not open or closed (RFC 3863 §4.1.4)`);
      if (value === 'open') open = true;
    }
  }
  const persons = childElements(root, NS_DM, 'person');
  // A document with only a person element (RFC 4479) and no tuple still says the user is there.
  if (tuples.length === 0 && persons.length > 0) open = true;

  const note = firstNote(root, tuples, persons);
  if (!open) return { state: 'Offline', note };
  return { state: stateOfActivities([...tuples, ...persons]), note };
}

function stateOfActivities(holders: readonly XmlElement[]): PresenceStateName {
  const names = new Set<string>();
  const others: string[] = [];
  for (const holder of holders) {
    for (const activities of childElements(holder, NS_RPID, 'activities')) {
      for (const a of activities.children) {
        if (a.ns !== NS_RPID) continue;
        names.add(a.name);
        if (a.name === 'other') others.push(a.text);
      }
    }
  }
  if (others.some((o) => DND_OTHER.test(o))) return 'Do Not Disturb';
  if (others.some((o) => BRB_OTHER.test(o))) return 'Be Right Back';
  if ([...names].some((n) => BUSY_ACTIVITIES.has(n))) return 'Busy';
  if ([...names].some((n) => AWAY_ACTIVITIES.has(n))) return 'Away';
  return 'Available';
}

function firstNote(root: XmlElement, tuples: readonly XmlElement[], persons: readonly XmlElement[]): string {
  const candidates = [
    ...persons.flatMap((p) => childElements(p, NS_DM, 'note')),
    ...tuples.flatMap((t) => childElements(t, NS_PIDF, 'note')),
    ...childElements(root, NS_PIDF, 'note'),
  ];
  const text = candidates.map((n) => n.text.trim()).find((t) => t !== '') ?? '';
  return text.slice(0, MAX_NOTE_CHARS);
}

/** `user@host` of `sip:`, `sips:` or `pres:` URIs (RFC 3859 §3), for comparing entities. */
function addressPart(uri: string): string {
  return uri.trim().replace(/^<|>$/g, '').replace(/^(sips?|pres):/i, '').replace(/[;?].*$/, '').toLowerCase();
}

/** The wire form of each state: basic status and RPID activities (see the table above). */
function wireForm(state: PresenceStateName): { basic: 'open' | 'closed'; activities: string } {
  switch (state) {
    case 'Available': return { basic: 'open', activities: '' };
    case 'Busy': return { basic: 'open', activities: '<rpid:busy/>' };
    case 'Do Not Disturb': return { basic: 'open', activities: '<rpid:busy/><rpid:other>do-not-disturb</rpid:other>' };
    case 'Be Right Back': return { basic: 'open', activities: '<rpid:away/><rpid:other>be-right-back</rpid:other>' };
    case 'Away': return { basic: 'open', activities: '<rpid:away/>' };
    case 'Offline': return { basic: 'closed', activities: '' };
  }
}

/** The PIDF document for a presentity's aggregated state (RFC 3863 §4, RFC 4480 §3.2). */
export function buildPidf(entity: string, presence: PresenceState): string {
  const { basic, activities } = wireForm(presence.state);
  const note = presence.note === '' ? '' : escapeXmlText(presence.note);
  const lines = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<presence xmlns="${NS_PIDF}" xmlns:dm="${NS_DM}" xmlns:rpid="${NS_RPID}" entity="${escapeXmlAttr(entity)}">`,
    '  <tuple id="parley">',
    `    <status><basic>${basic}</basic></status>`,
    ...(note === '' ? [] : [`    <note>${note}</note>`]),
    '  </tuple>',
    '  <dm:person id="p">',
    ...(activities === '' ? [] : [`    <rpid:activities>${activities}</rpid:activities>`]),
    ...(note === '' ? [] : [`    <dm:note>${note}</dm:note>`]),
    '  </dm:person>',
    '</presence>',
    '',
  ];
  return lines.join('\r\n');
}

/** Most available first: how several devices of one user aggregate (the lowest rank wins). */
export function availabilityRank(state: PresenceStateName): number {
  return PRESENCE_STATES.indexOf(state);
}
