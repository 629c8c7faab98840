// Presence (RFC 3856, RFC 3903, RFC 6665, PIDF/RPID): what other capabilities may use.
export { PresenceService, type PresenceOptions, type PresenceSnapshot } from './service.ts';
export { publishHandler } from './publish.ts';
export { subscribeHandler } from './subscribe.ts';
export { buildPidf, parsePidf, PIDF_TYPE, PRESENCE_STATES, OFFLINE, type PresenceState, type PresenceStateName } from './pidf.ts';
export { aggregate, DEFAULT_PUBLISH_EXPIRY, type ExpirySettings } from './publications.ts';
export { DEFAULT_SUBSCRIBE_EXPIRY } from './subscriptions.ts';
export { PRESENCE_ERRORS, PresenceError, type PresenceErrorCode } from './errors.ts';
