import { EventEmitter } from 'node:events';

/**
 * Told whenever the bindings of an address-of-record change: a REGISTER, a closed connection, an
 * expiry. Presence listens to it: a user with no binding is Offline, whatever was published.
 */
export type RegistrationEvents = EventEmitter<{ changed: [aor: string] }>;

export function createRegistrationEvents(): RegistrationEvents {
  return new EventEmitter<{ changed: [aor: string] }>();
}
