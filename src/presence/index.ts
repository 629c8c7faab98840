// Presence (RFC 3856, RFC 3903, PIDF/RPID): the `presence` event package and PUBLISH, blocked
// watchers and contact lists (storage, the user's HTTP endpoints), resource lists (RFC 4662). What other capabilities may use. SUBSCRIBE/NOTIFY
// is src/events.
export { DEFAULT_BLOCK_POLL_MS, PresenceService, type PresenceInspection, type PresenceOptions, type PresenceSnapshot } from './service.ts';
export { MAX_PUBLISH_BODY, publishHandler } from './publish.ts';
export { buildPidf, parsePidf, PIDF_TYPE, PRESENCE_STATES, OFFLINE, type PresenceState, type PresenceStateName } from './pidf.ts';
export { aggregate, DEFAULT_PUBLISH_EXPIRY, type ExpirySettings, type PublicationDetails } from './publications.ts';
export type { SharedPublication, SharedPublications, SharedPublicationsListener } from './shared-publications.ts';
export { PRESENCE_EVENT } from './headers.ts';
export { PRESENCE_ERRORS, PresenceError, type PresenceErrorCode } from './errors.ts';
export { PRESENCE_MIGRATIONS } from './schema.ts';
export { databaseBlockList, getBlock, listBlocks, type BlockChange, type BlockList, type PresenceBlock } from './blocks.ts';
export { addToContacts, blockWatcher, removeFromContacts, requireBlock, requireContact, unblockWatcher, watcherAddress } from './policy.ts';
export { MAX_BLOCKS, MAX_CONTACTS } from './list-limits.ts';
export { databaseContactLists, listContacts, type Contact, type ContactLists } from './contacts.ts';
export { EVENTLIST, LIST_SUFFIX, RLMI_TYPE, buildListDocument, listOwner, listResource } from './lists.ts';
export { BLOCKED_PATH, CONTACTS_PATH, createPresenceRoute, type PresenceRouteOptions } from './http.ts';
