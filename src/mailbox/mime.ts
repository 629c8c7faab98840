// A stored item as an Internet message (RFC 5322 with MIME, RFC 2045/2046/2047): what EWS answers
// as t:MimeContent, and what IMAP gateways such as DavMail hand to mail clients. Parley keeps items
// as fields (subject, addresses, HTML and text bodies), so the message is built from them, the same
// bytes every time for the same item. Bodies are UTF-8 in base64; header text outside printable
// ASCII is an encoded-word, so no value can break a header line.
import type { ItemRecord, Mailer } from './items.ts';

const CRLF = '\r\n';

/** The item as a MIME message; `domain` makes a Message-ID for items that have none. */
export function itemToMime(item: ItemRecord, domain: string): Buffer {
  const headers: string[] = [];
  if (item.from !== null) headers.push(`From: ${addressList([item.from])}`);
  if (item.to.length > 0) headers.push(`To: ${addressList(item.to)}`);
  if (item.cc.length > 0) headers.push(`Cc: ${addressList(item.cc)}`);
  headers.push(`Subject: ${unstructured(item.subject)}`);
  headers.push(`Date: ${rfc5322Date(item.sentAt ?? item.receivedAt)}`);
  headers.push(`Message-ID: ${messageId(item, domain)}`);
  headers.push('MIME-Version: 1.0');
  const text = item.bodyText;
  const html = item.bodyHtml;
  let body: string;
  if (text !== null && html !== null) {
    // the boundary only has to be absent from the base64 parts, which never hold "_"
    const boundary = `_parley_${item.id.replace(/[^A-Za-z0-9]/g, '')}_`;
    headers.push(`Content-Type: multipart/alternative; boundary="${boundary}"`);
    body = `--${boundary}${CRLF}${part('text/plain', text)}${CRLF}--${boundary}${CRLF}${part('text/html', html)}${CRLF}--${boundary}--${CRLF}`;
  } else {
    const [type, content] = html !== null ? ['text/html', html] : ['text/plain', text ?? ''];
    headers.push(`Content-Type: ${type}; charset=utf-8`, 'Content-Transfer-Encoding: base64');
    body = base64Lines(content);
  }
  return Buffer.from(`${headers.join(CRLF)}${CRLF}${CRLF}${body}`, 'utf8');
}

function part(type: string, content: string): string {
  return `Content-Type: ${type}; charset=utf-8${CRLF}Content-Transfer-Encoding: base64${CRLF}${CRLF}${base64Lines(content)}`;
}

/** base64 in lines of 76 characters (RFC 2045 §6.8), each ending in CRLF */
function base64Lines(content: string): string {
  const b64 = Buffer.from(content, 'utf8').toString('base64');
  let out = '';
  for (let i = 0; i < b64.length; i += 76) out += b64.slice(i, i + 76) + CRLF;
  return out;
}

const PRINTABLE = /^[\x20-\x7e]*$/;

/** Header text: as is when printable ASCII, else RFC 2047 B encoded-words of whole characters, folded. */
export function unstructured(value: string): string {
  if (PRINTABLE.test(value) && value.length <= 900) return value;
  const words: string[] = [];
  let chunk = '';
  for (const ch of value) {
    // 45 bytes of UTF-8 → 60 base64 characters: each encoded-word stays under 75 (§2)
    if (Buffer.byteLength(chunk + ch, 'utf8') > 45) {
      words.push(chunk);
      chunk = '';
    }
    chunk += ch;
  }
  if (chunk !== '' || words.length === 0) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join(`${CRLF} `);
}

function addressList(list: readonly Mailer[]): string {
  return list.map(mailbox).join(`,${CRLF} `);
}

function mailbox(m: Mailer): string {
  const address = /^[^\s<>()",;:\\@]+@[^\s<>()",;:\\@]+$/.test(m.address) ? m.address : 'invalid@invalid';
  if (m.name === undefined || m.name === '' || m.name === m.address) return `<${address}>`;
  const name = PRINTABLE.test(m.name) ? `"${m.name.replace(/[\\"]/g, (c) => `\\${c}`)}"` : unstructured(m.name);
  return `${name} <${address}>`;
}

function messageId(item: ItemRecord, domain: string): string {
  const given = item.internetMessageId?.trim();
  if (given !== undefined && /^<[\x21-\x3b\x3d\x3f-\x7e]+@[\x21-\x3b\x3d\x3f-\x7e]+>$/.test(given)) return given;
  return `<${item.id}@${domain}>`;
}

const DAYS = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];

/** RFC 5322 §3.3 date-time in UTC: `Sun, 06 Dec 2026 19:32:22 +0000` */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  const two = (n: number) => String(n).padStart(2, '0');
  return `${DAYS[d.getUTCDay()]}, ${two(d.getUTCDate())} ${MONTHS[d.getUTCMonth()]} ${d.getUTCFullYear()} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}:${two(d.getUTCSeconds())} +0000`;
}
