// Inbound SMTP (RFC 5321) for mail from other organisations, on smtp-server (the Nodemailer
// project's server library: framing, SIZE, limits). Parley is never an open relay: a recipient
// must be an existing local user (550 5.7.1 for other domains, 550 5.1.1 for unknown users). Mail
// from outside is stored in Inbox as a plain IPM.Note whatever it claims: outside mail never
// becomes a Missed Conversation or Conversation History item (MISSION.md). A retransmitted message
// (same Message-ID) is stored once per mailbox.
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import type { AddressObject, ParsedMail } from 'mailparser';
import type { SMTPServerDataStream, SMTPServerSession } from 'smtp-server';
import type { Logger } from '../../observability/logger.ts';
import type { Sql } from '../../storage/index.ts';
import { distinguishedFolderId, ensureMailbox } from '../folders.ts';
import { createItem, findItemByInternetMessageId } from '../items.ts';
import type { Mailer } from '../items.ts';
import { MailboxError } from '../errors.ts';
import { MailboxQuota } from '../quota.ts';
import { WRITE, lockChangeLog, lockMailbox } from '../writes.ts';

export interface SmtpInboundOptions {
  sql: Sql;
  logger: Logger;
  domain: string;
  userExists: (address: string) => Promise<boolean>;
  address: string;
  port: number;
  /** the largest message accepted, announced with SIZE (RFC 1870); default 10 MiB */
  maxBytes?: number;
  /** the mailbox quotas: a recipient whose mailbox is full is refused at RCPT TO; default DEFAULT_MAILBOX_QUOTA */
  quota?: MailboxQuota;
  now?: () => number;
}

export interface SmtpListener {
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

const smtpError = (code: number, text: string) => Object.assign(new Error(text), { responseCode: code });

export async function startSmtpInbound(opts: SmtpInboundOptions): Promise<SmtpListener> {
  const maxBytes = opts.maxBytes ?? 10 * 1024 * 1024;
  const now = opts.now ?? Date.now;
  const sql = opts.sql;
  const quota = opts.quota ?? new MailboxQuota();
  // loaded here: a server with smtp off never loads them (memory)
  const [{ SMTPServer }, { simpleParser }] = await Promise.all([import('smtp-server'), import('mailparser')]);
  const server = new SMTPServer({
    name: opts.domain,
    banner: 'Parley ESMTP',
    authOptional: true,
    disabledCommands: ['AUTH', 'STARTTLS'],
    size: maxBytes,
    logger: false,
    maxClients: 100,
    onRcptTo(address, session, callback) {
      recipientRefusal(address.address.toLowerCase(), session).then(
        (refusal) => (refusal === null ? callback() : callback(refusal)),
        (err: unknown) => {
          opts.logger.error({ err }, 'SMTP recipient could not be checked');
          callback(smtpError(451, '4.3.0 the recipient could not be checked; try again later'));
        },
      );
    },
    onData(stream, session, callback) {
      receive(stream, session).then(
        () => callback(),
        (err: unknown) => {
          if (err instanceof Error && 'responseCode' in err) return callback(err);
          opts.logger.error({ err }, 'SMTP message could not be stored');
          callback(smtpError(451, '4.3.0 the message could not be stored; try again later'));
        },
      );
    },
  });
  server.on('error', (err) => opts.logger.warn({ err }, 'SMTP connection error'));

  /** Why RCPT TO `rcpt` is refused (an SMTP error), or null: it is taken. */
  async function recipientRefusal(rcpt: string, session: SMTPServerSession): Promise<Error | null> {
    const at = rcpt.lastIndexOf('@');
    if (at < 0 || rcpt.slice(at + 1) !== opts.domain.toLowerCase()) {
      opts.logger.info({ rcpt, remote: session.remoteAddress }, 'SMTP relay to %s refused', rcpt);
      return smtpError(550, `5.7.1 <${rcpt}>: relaying denied; this server accepts mail for ${opts.domain} only`);
    }
    if (!(await opts.userExists(rcpt))) return smtpError(550, `5.1.1 <${rcpt}>: no such user here`);
    try {
      await quota.requireRoomToReceiveAt(sql, rcpt);
    } catch (error) {
      if (!(error instanceof MailboxError)) throw error;
      // RFC 3463 X.2.2 mailbox full; 4xx: the sender's server tries again, and the owner may make room
      opts.logger.info({ rcpt, remote: session.remoteAddress }, 'SMTP to %s refused: %s', rcpt, error.message);
      return smtpError(452, `4.2.2 <${rcpt}>: ${error.message}`);
    }
    return null;
  }

  async function receive(stream: SMTPServerDataStream, session: SMTPServerSession): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    if (stream.sizeExceeded) throw smtpError(552, `5.3.4 the message exceeds the limit of ${maxBytes} bytes`);
    const mail = await simpleParser(Buffer.concat(chunks), { skipImageLinks: true, skipTextToHtml: true });
    const recipients = session.envelope.rcptTo.map((r) => r.address.toLowerCase());
    const messageId = mail.messageId?.trim() || `<${randomUUID()}@${opts.domain}>`;
    const stored = await store(mail, recipients, messageId);
    opts.logger.info({ messageId, recipients, stored, remote: session.remoteAddress }, 'SMTP message %s stored for %d recipient(s)', messageId, stored);
  }

  async function store(mail: ParsedMail, recipients: string[], messageId: string): Promise<number> {
    const at = now();
    const first = (a: AddressObject | AddressObject[] | undefined): Mailer[] =>
      (Array.isArray(a) ? a : a ? [a] : []).flatMap((o) => o.value).filter((v) => v.address).map((v) => ({ address: v.address ?? '', name: v.name || undefined }));
    const from = first(mail.from)[0] ?? null;
    return sql.transaction(async (tx) => {
      let count = 0;
      for (const rcpt of new Set(recipients)) {
        await lockChangeLog(tx);
        const mailbox = await ensureMailbox(tx, rcpt, now);
        await lockMailbox(tx, mailbox.id);
        if ((await findItemByInternetMessageId(tx, mailbox.id, messageId)) !== undefined) continue;
        await createItem(tx, mailbox.id, await distinguishedFolderId(tx, mailbox.id, 'inbox'), {
          itemClass: 'IPM.Note', // never an IM class from outside
          subject: mail.subject ?? '',
          bodyHtml: typeof mail.html === 'string' ? mail.html : null,
          bodyText: mail.text ?? null,
          from,
          to: first(mail.to),
          cc: first(mail.cc),
          sentAt: mail.date?.getTime() ?? null,
          receivedAt: at,
          isRead: false,
          internetMessageId: messageId,
          conversationTopic: mail.subject ?? null,
        }, now);
        count++;
      }
      return count;
    }, WRITE);
  }

  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port, opts.address, () => {
      server.server.off('error', reject);
      resolve();
    });
  });
  const bound = server.server.address() as AddressInfo;
  return {
    address: bound.address,
    port: bound.port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
