import { randomBytes } from 'node:crypto';

/** A new opaque id: 16 random bytes, base64url (22 characters). Not guessable, not a sequence. */
export function newId(): string {
  return randomBytes(16).toString('base64url');
}

/** A new change key: replaced on every change of the item or folder. */
export function newChangeKey(): string {
  return randomBytes(9).toString('base64url');
}

const ID = /^[A-Za-z0-9_-]{22}$/;

/** True when the text has the shape of an id we issue (anything else is ErrorInvalidIdMalformed). */
export function isWellFormedId(text: string): boolean {
  return ID.test(text);
}
