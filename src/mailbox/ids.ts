import { randomBytes } from 'node:crypto';

/**
 * A new opaque id: 16 random bytes, base64url (22 characters). Not guessable, not a sequence.
 * Never starting with `-`, so `parley mailbox show ID` does not read an id as an option.
 */
export function newId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
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
