// Typed views of a subscription's NOTIFY bodies: each body is checked against the package's
// Content-Type and parsed; a body that does not fit becomes a ClientError INVALID_BODY for the
// caller to emit, never a throw out of the NOTIFY handler (the NOTIFY is answered 200 already).

import { ClientError } from './errors.ts';
import type { ClientSubscription } from './subscription.ts';

export function deliverBodies<T>(subscription: ClientSubscription, type: string, parse: (body: string) => T, deliver: (value: T) => void, fail: (error: ClientError) => void): void {
  subscription.on('notify', (notify) => {
    if (notify.body.trim() === '') return; // a NOTIFY without state (pending, or a final one)
    const media = (notify.contentType.split(';')[0] ?? '').trim().toLowerCase();
    let value: T;
    try {
      if (media !== '' && media !== type) throw new ClientError('INVALID_BODY', `${subscription.event} NOTIFY has Content-Type ${notify.contentType}, not ${type}`);
      value = parse(notify.body);
    } catch (error) {
      fail(error instanceof ClientError ? error : new ClientError('INVALID_BODY', `${subscription.event} NOTIFY body does not parse`, { cause: error }));
      return;
    }
    deliver(value);
  });
}
