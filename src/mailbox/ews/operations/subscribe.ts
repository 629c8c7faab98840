// Subscribe (EWS reference, "Subscribe operation"), pull subscriptions only: PullSubscriptionRequest
// with FolderIds or SubscribeToAllFolders, EventTypes, optional Watermark, Timeout (1-1440 minutes).
import { childElement, childElements, childText } from '../../../xml/index.ts';
import { createSubscription } from '../../subscriptions.ts';
import { responseMessage } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { readFolderIds, resolveFolder } from '../folder-ids.ts';
import { M_NS, T_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { el, responseOf } from '../write.ts';
import { readWatermark, writeWatermark } from '../watermark.ts';

/** The event types Parley reports; the others (copies, free/busy) never happen in its store. */
export const EVENT_TYPES = ['NewMailEvent', 'CreatedEvent', 'DeletedEvent', 'ModifiedEvent', 'MovedEvent', 'CopiedEvent', 'FreeBusyChangedEvent'] as const;

export const subscribeOperation: EwsOperation = {
  name: 'Subscribe',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const pull = childElement(request, M_NS, 'PullSubscriptionRequest');
    if (pull === undefined) throw new EwsError('ErrorInvalidRequest', 'Parley supports pull subscriptions (m:PullSubscriptionRequest) only');
    const all = pull.attrs.get('SubscribeToAllFolders') === 'true';
    const targets = all ? [] : readFolderIds(childElement(pull, T_NS, 'FolderIds'), 't:FolderIds');
    const types = childElements(childElement(pull, T_NS, 'EventTypes') ?? pull, T_NS, 'EventType').map((e) => e.text.trim());
    if (types.length === 0) throw new EwsError('ErrorSchemaValidation', 't:EventTypes must name at least one t:EventType');
    const unknown = types.find((t) => !(EVENT_TYPES as readonly string[]).includes(t));
    if (unknown !== undefined) throw new EwsError('ErrorSchemaValidation', `unknown event type ${JSON.stringify(unknown)}`);
    const timeoutText = childText(pull, T_NS, 'Timeout')?.trim() ?? '';
    const timeout = /^\d{1,4}$/.test(timeoutText) ? Number(timeoutText) : NaN;
    if (!(timeout >= 1 && timeout <= 1440)) throw new EwsError('ErrorSchemaValidation', `t:Timeout must be 1 to 1440 minutes, not ${JSON.stringify(timeoutText)}`);
    const watermark = childText(pull, T_NS, 'Watermark');
    return responseOf('Subscribe', [
      await responseMessage('Subscribe', async () => {
        const folders: string[] = [];
        for (const t of targets) folders.push((await resolveFolder(ctx, t)).id);
        const start = watermark === undefined ? undefined : await readWatermark(ctx.sql, watermark);
        const sub = await createSubscription(ctx.sql, ctx.mailbox.id, folders, types, timeout, start, ctx.now());
        return `${el('m:SubscriptionId', sub.id)}${el('m:Watermark', writeWatermark(sub.position))}`;
      }),
    ]);
  },
};
