// Presence (RFC 3856, RFC 3903, PIDF/RPID): the `presence` event package and PUBLISH. What other
// capabilities may use. SUBSCRIBE/NOTIFY is src/events.
export { PresenceService, type PresenceOptions, type PresenceSnapshot } from './service.ts';
export { publishHandler } from './publish.ts';
export { buildPidf, parsePidf, PIDF_TYPE, PRESENCE_STATES, OFFLINE, type PresenceState, type PresenceStateName } from './pidf.ts';
export { aggregate, DEFAULT_PUBLISH_EXPIRY, type ExpirySettings } from './publications.ts';
export { PRESENCE_EVENT } from './headers.ts';
export { PRESENCE_ERRORS, PresenceError, type PresenceErrorCode } from './errors.ts';
