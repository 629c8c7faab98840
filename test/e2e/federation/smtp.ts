// An SMTP server standing for a partner organisation's mail server: it keeps what it receives, and
// whether it came over TLS. On port 25 it is a mail exchanger found through an MX record.
import { readFileSync } from 'node:fs';
import { SMTPServer } from 'smtp-server';

export interface ReceivedMail {
  from: string;
  to: string[];
  raw: string;
  /** the session was encrypted (STARTTLS) */
  secure: boolean;
}

export interface SmtpStandIn {
  host: string;
  port: number;
  received: ReceivedMail[];
  stop(): Promise<void>;
}

export interface SmtpStandInOptions {
  /** default 0: a port the OS chooses; 25 for a mail exchanger (MX records name no port) */
  port?: number;
  /** offer STARTTLS with this certificate and key (PEM files); default: no STARTTLS */
  tls?: { cert: string; key: string };
}

export async function startSmtpStandIn(host: string, options: SmtpStandInOptions = {}): Promise<SmtpStandIn> {
  const received: ReceivedMail[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: options.tls === undefined ? ['STARTTLS', 'AUTH'] : ['AUTH'],
    ...(options.tls === undefined ? {} : { key: readFileSync(options.tls.key), cert: readFileSync(options.tls.cert) }),
    logger: false,
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        received.push({
          from: session.envelope.mailFrom === false ? '' : session.envelope.mailFrom.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          raw: Buffer.concat(chunks).toString('utf8'),
          secure: session.secure,
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const address = server.server.address();
  if (address === null || typeof address === 'string') throw new Error('smtp stand-in: no address');
  return { host, port: address.port, received, stop: () => new Promise((r) => server.close(() => r())) };
}
