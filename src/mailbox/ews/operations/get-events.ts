// GetEvents (EWS reference, "GetEvents operation"): SubscriptionId and the last Watermark received.
// Answers one Notification: SubscriptionId, PreviousWatermark, MoreEvents, then the events (each
// with Watermark, TimeStamp, ItemId, ParentFolderId), or one StatusEvent when nothing happened.
import { childText } from '../../../xml/index.ts';
import { distinguishedFolderId } from '../../folders.ts';
import { getSubscription, pollSubscription } from '../../subscriptions.ts';
import type { LoggedChange } from '../../subscriptions.ts';
import { responseMessage } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { attr, dateTime, el, responseOf } from '../write.ts';
import { readWatermark, writeWatermark } from '../watermark.ts';

const MAX_EVENTS = 50;

export const getEventsOperation: EwsOperation = {
  name: 'GetEvents',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const id = childText(request, M_NS, 'SubscriptionId')?.trim();
    const watermark = childText(request, M_NS, 'Watermark');
    if (!id || watermark === undefined) throw new EwsError('ErrorSchemaValidation', 'GetEvents needs m:SubscriptionId and m:Watermark');
    return responseOf('GetEvents', [
      await responseMessage('GetEvents', async () => {
        const now = ctx.now();
        const sub = await getSubscription(ctx.sql, ctx.mailbox.id, id, now);
        const from = await readWatermark(ctx.sql, watermark);
        const { changes, more, position } = await pollSubscription(ctx.sql, sub, from, MAX_EVENTS, now);
        const inbox = await distinguishedFolderId(ctx.sql, ctx.mailbox.id, 'inbox');
        const wanted = new Set(sub.eventTypes);
        const events = changes.flatMap((c) => eventsOf(c, inbox).filter((name) => wanted.has(name)).map((name) => eventXml(name, c)));
        const body = events.length > 0 ? events.join('') : `<t:StatusEvent>${el('t:Watermark', writeWatermark(position))}</t:StatusEvent>`;
        return `<m:Notification>${el('t:SubscriptionId', sub.id)}${el('t:PreviousWatermark', writeWatermark(from))}${el('t:MoreEvents', more)}${body}</m:Notification>`;
      }),
    ]);
  },
};

function eventsOf(c: LoggedChange, inbox: string): string[] {
  switch (c.kind) {
    case 'create':
      return c.folderId === inbox ? ['NewMailEvent', 'CreatedEvent'] : ['CreatedEvent'];
    case 'delete':
      return ['DeletedEvent'];
    case 'update':
    case 'read':
      return ['ModifiedEvent'];
  }
}

function eventXml(name: string, c: LoggedChange): string {
  return `<t:${name}>${el('t:Watermark', writeWatermark(c.seq))}${el('t:TimeStamp', dateTime(c.at))}<t:ItemId${attr('Id', c.itemId)}/><t:ParentFolderId${attr('Id', c.folderId)}/></t:${name}>`;
}
