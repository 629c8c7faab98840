// Reading a user's Conversation History back through EWS with a client we did not write
// (ews-javascript-api), as an Outlook or a mail archive would: every item of one class, each with
// its InternetMessageId (a spool entry's delivery is `<entry id@domain>`) and its body as text.
import ews from 'ews-javascript-api';
import type { RunningServer } from './server.ts';

const { BasePropertySet, BodyType, EmailMessageSchema, ExchangeService, ExchangeVersion, ItemSchema, ItemView, PropertySet, SearchFilter, Uri, WebCredentials, WellKnownFolderName } = ews;

export const MISSED_CLASS = 'IPM.Note.Microsoft.Missed';
export const CONVERSATION_CLASS = 'IPM.Note.Microsoft.Conversation';

export interface HistoryItem {
  internetMessageId: string;
  /** the body as text (the transcript) */
  text: string;
}

/** Every item of `itemClass` in `address`'s Conversation History, read through EWS at `node`, page by page. */
export async function conversationHistory(node: RunningServer, address: string, password: string, itemClass: string): Promise<HistoryItem[]> {
  const service = new ExchangeService(ExchangeVersion.Exchange2013);
  service.Credentials = new WebCredentials(address, password);
  service.Url = new Uri(`http://${node.http.host}:${node.http.port}/EWS/Exchange.asmx`);
  const filter = new SearchFilter.IsEqualTo(ItemSchema.ItemClass, itemClass);
  const found: InstanceType<typeof ews.EmailMessage>[] = [];
  const view = new ItemView(100, 0);
  for (;;) {
    const page = await service.FindItems(WellKnownFolderName.ConversationHistory, filter, view);
    found.push(...(page.Items as InstanceType<typeof ews.EmailMessage>[]));
    if (!page.MoreAvailable) break;
    view.Offset = page.NextPageOffset ?? view.Offset + page.Items.length;
  }
  if (found.length === 0) return [];
  const properties = new PropertySet(BasePropertySet.IdOnly, [ItemSchema.Body, EmailMessageSchema.InternetMessageId]);
  properties.RequestedBodyType = BodyType.Text;
  await service.LoadPropertiesForItems(found, properties);
  return found.map((m) => ({ internetMessageId: m.InternetMessageId, text: m.Body.Text }));
}

/** The spool entry an item was delivered for (its InternetMessageId), or undefined. */
export function spoolEntryOf(item: HistoryItem): string | undefined {
  return /^<(sp-[a-z2-7]+)@/.exec(item.internetMessageId)?.[1];
}
