// One message to one SMTP server: the socket edge of outbound mail (nodemailer's SMTP client, one
// connection per message). SmtpOutbound decides which servers and in what order; tests pass a fake
// SmtpSend and open no socket.
import type { SendMailOptions } from 'nodemailer';

/** One SMTP server an attempt connects to. */
export interface SmtpServer {
  /** a host name or an address */
  host: string;
  port: number;
  /** implicit TLS */
  secure: boolean;
  /** fail unless STARTTLS succeeds */
  requireTls: boolean;
  /** the name TLS asks for and, when verified, checks the certificate against (an MX host's name when `host` is its address) */
  servername?: string;
  /** check the server's certificate (a configured route); false: encryption without authentication (an MX host) */
  verifyCertificate: boolean;
  /** for the trace and the log: `mail.partner.example[192.0.2.25]:25 (MX)` */
  label: string;
}

/**
 * Sends one message to one server; resolves once the server took it (250), rejects with the
 * client's error — carrying `responseCode` when the server answered (4xx, 5xx), none when it could
 * not be reached or spoke no SMTP.
 */
export type SmtpSend = (server: SmtpServer, mail: SendMailOptions, o: { name: string; timeoutMs: number | undefined }) => Promise<void>;

/** The real sender: nodemailer's SMTP client, one connection per message. */
export const nodemailerSend: SmtpSend = async (server, mail, o) => {
  // loaded by the first message sent: a server that sends no mail never loads it (memory)
  const { default: nodemailer } = await import('nodemailer');
  const transport = nodemailer.createTransport({
    host: server.host,
    port: server.port,
    secure: server.secure,
    requireTLS: server.requireTls,
    // STARTTLS when offered; to an MX host, a server refusing the STARTTLS it offered still gets the mail in plain (RFC 3207 §4.1, RFC 7435)
    opportunisticTLS: !server.requireTls && !server.verifyCertificate,
    ...(server.servername !== undefined ? { servername: server.servername } : {}),
    tls: { rejectUnauthorized: server.verifyCertificate },
    name: o.name,
    connectionTimeout: o.timeoutMs ?? 30_000,
    greetingTimeout: o.timeoutMs ?? 30_000,
    socketTimeout: o.timeoutMs ?? 60_000,
  });
  try {
    await transport.sendMail(mail);
  } finally {
    transport.close();
  }
};
