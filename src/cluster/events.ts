// The events one node's capabilities raise that every node must hear, carried by the cluster bus:
//
//   registration.changed   an AoR's bindings changed (REGISTER, closed connection, expiry, a dead
//                          node's bindings dropped): presence watchers and Conversation History on
//                          every node look again (they read the bindings from Redis)
//   mailbox.changed        a user's mailbox changed (offline delivery, EWS, the conversations API):
//                          message-summary subscribers on every node get their NOTIFY
//   settings.changed       the admin API changed settings: every node drops its version caches and
//                          rebuilds provisioning documents now. (`parley admin --database` writes
//                          PostgreSQL directly; every node's provisioning package notices that by
//                          polling settings_version once a second, and caches hear the triggers'
//                          NOTIFY, as on one node.)
//
// A node acts on its own events at once, in-process, and skips its own bus deliveries (`own`).
// Pub/sub may lose messages while a node's Redis connection is down; once the bus has subscribed
// again, the node assumes it missed some: it drops its caches and rebuilds provisioning documents
// (settingsChanged), and tells presence and history again about every AoR one of its
// subscriptions watches (their state is read afresh from Redis and PostgreSQL). Mailbox counts
// missed meanwhile reach the clients at their next change or refresh.

import type { RegistrationEvents } from '../registrar/events.ts';
import type { ClusterBus } from './bus.ts';

export interface ClusterEvents extends Record<string, unknown> {
  'registration.changed': { aor: string };
  'mailbox.changed': { address: string };
  'settings.changed': Record<string, never>;
}

export interface LocalEvents {
  /** this node's registration events: what is emitted on it is published; what other nodes publish is emitted on it */
  readonly registrations: RegistrationEvents;
  /** tells this node's message-summary subscribers */
  mailboxChanged(address: string): void;
  /** drops this node's caches and NOTIFYs its provisioning subscribers whose settings changed */
  settingsChanged(): void;
  /** the AoRs this node's subscriptions watch (told again after the bus missed something) */
  watchedAors(): Iterable<string>;
  /** a publication that failed (Redis away): the other nodes miss that event */
  onError(err: Error): void;
}

export interface SharedEvents {
  /** this node's and every other node's message-summary subscribers */
  mailboxChanged(address: string): void;
  /** this node's caches and provisioning now, and every other node's */
  settingsChanged(): void;
  close(): Promise<void>;
}

export async function shareEvents(bus: ClusterBus<ClusterEvents>, local: LocalEvents): Promise<SharedEvents> {
  const publish = <T extends keyof ClusterEvents & string>(topic: T, payload: ClusterEvents[T]): void => {
    bus.publish(topic, payload).catch((err: unknown) => local.onError(err as Error));
  };
  // an emit that came from the bus is not published again
  let fromBus = false;
  const emitHere = (aor: string): void => {
    fromBus = true;
    try {
      local.registrations.emit('changed', aor);
    } finally {
      fromBus = false;
    }
  };
  const onLocalRegistration = (aor: string): void => {
    if (!fromBus) publish('registration.changed', { aor });
  };
  local.registrations.on('changed', onLocalRegistration);
  const unsubscribes = [
    await bus.subscribe('registration.changed', ({ aor }, d) => {
      if (!d.own && typeof aor === 'string') emitHere(aor);
    }),
    await bus.subscribe('mailbox.changed', ({ address }, d) => {
      if (!d.own && typeof address === 'string') local.mailboxChanged(address);
    }),
    await bus.subscribe('settings.changed', (_payload, d) => {
      if (!d.own) local.settingsChanged();
    }),
  ];
  const stopResubscribed = bus.onResubscribed(() => {
    local.settingsChanged();
    for (const aor of new Set(local.watchedAors())) emitHere(aor);
  });
  return {
    mailboxChanged(address) {
      local.mailboxChanged(address);
      publish('mailbox.changed', { address });
    },
    settingsChanged() {
      local.settingsChanged();
      publish('settings.changed', {});
    },
    async close() {
      stopResubscribed();
      local.registrations.off('changed', onLocalRegistration);
      for (const unsubscribe of unsubscribes) await unsubscribe();
    },
  };
}
