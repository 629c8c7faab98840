// Unsubscribe (EWS reference, "Unsubscribe operation"): ends a pull subscription.
import { childText } from '../../../xml/index.ts';
import { removeSubscription } from '../../subscriptions.ts';
import { responseMessage } from '../batch.ts';
import { EwsError } from '../codes.ts';
import { M_NS } from '../names.ts';
import type { EwsOperation } from '../operation.ts';
import { responseOf } from '../write.ts';

export const unsubscribeOperation: EwsOperation = {
  name: 'Unsubscribe',
  since: 'Exchange2007_SP1',
  async handle(ctx, request) {
    const id = childText(request, M_NS, 'SubscriptionId')?.trim();
    if (!id) throw new EwsError('ErrorSchemaValidation', 'Unsubscribe needs m:SubscriptionId');
    return responseOf('Unsubscribe', [
      await responseMessage('Unsubscribe', async () => {
        await removeSubscription(ctx.sql, ctx.mailbox.id, id, ctx.now());
        return '';
      }),
    ]);
  },
};
