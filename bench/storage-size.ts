// Disk per offline message (issue 19's retention): a real server takes N offline MESSAGEs, each in
// a conversation of its own (distinct sender and recipient pairs: the worst case, one spool entry,
// one Missed Conversation and one sender copy per message), delivers them, and the database's
// growth is split per table with SQLite's dbstat. What retention.delivered purges (spool entries,
// their messages and trace rows) is told apart from what stays (the mailbox items and the change
// log, which are the users' mail).
//
//   node bench/storage-size.ts [N=2000] [TEXT-BYTES=100]
import { DatabaseSync } from 'node:sqlite';
import path from 'node:path';
import { SipClient } from '../src/client/index.ts';
import { runCli, startServer } from '../test/harness/server.ts';

const N = Number(process.argv[2] ?? 2000);
const TEXT = Number(process.argv[3] ?? 100);
const DOMAIN = 'parley.test';
const SIDE = Math.ceil(Math.sqrt(N));
const senders = Array.from({ length: SIDE }, (_, i) => `s${i}`);
const recipients = Array.from({ length: SIDE }, (_, i) => `r${i}`);

const server = await startServer({
  domain: DOMAIN,
  users: [...senders, ...recipients].map((u) => ({ address: `${u}@${DOMAIN}`, password: `${u}-pw` })),
  config: { logLevel: 'warn', offlineIm: { senderQuota: { perMinute: 'unlimited' } } },
});
const admin = await runCli(['admin', '--data-dir', server.dataDir, 'Set-CsImConfiguration', '-OfflineImPickupDelay', '00:00:01']);
if (admin.code !== 0) throw new Error(admin.stderr);
const file = path.join(server.dataDir, 'parley.db');

function perTable(): Map<string, number> {
  const db = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = db.prepare('SELECT tbl_name AS t, sum(d.pgsize - d.unused) AS used FROM dbstat d JOIN sqlite_schema s ON s.name = d.name GROUP BY tbl_name').all() as Array<{ t: string; used: number }>;
    return new Map(rows.map((r) => [r.t, Number(r.used)]));
  } finally {
    db.close();
  }
}

const before = perTable();
const clients = await Promise.all(senders.map(async (s) => {
  const c = new SipClient({ server: `tcp://${server.tcp.host}:${server.tcp.port}`, aor: `sip:${s}@${DOMAIN}`, password: `${s}-pw`, requestTimeoutMs: 15_000, keepAliveIntervalMs: 0 });
  await c.connect();
  return c;
}));
const body = 'x'.repeat(TEXT);
let sent = 0;
await Promise.all(clients.map(async (c, i) => {
  for (let j = 0; j < SIDE && sent < N; j++) {
    sent++;
    const res = await c.sendMessage(`sip:${recipients[j]}@${DOMAIN}`, body);
    if (res.status !== 202) throw new Error(`${res.status} for s${i} → r${j}`);
  }
}));
// delivered: no entry left waiting or being delivered
for (;;) {
  const db = new DatabaseSync(file, { readOnly: true });
  const row = db.prepare("SELECT count(*) AS n FROM spool_entries WHERE state IN ('waiting', 'delivering')").get() as { n: number };
  db.close();
  if (row.n === 0) break;
  await new Promise((r) => setTimeout(r, 500));
}
const after = perTable();
await Promise.all(clients.map((c) => c.close()));
await server.stop();

const PURGED = new Set(['spool_entries', 'spool_messages', 'trace_events']);
let purged = 0;
let kept = 0;
const lines: string[] = [];
for (const [table, bytes] of after) {
  const grew = bytes - (before.get(table) ?? 0);
  if (grew <= 0) continue;
  if (PURGED.has(table)) purged += grew;
  else kept += grew;
  lines.push(`  ${table.padEnd(22)} ${(grew / sent).toFixed(0).padStart(6)} bytes/message${PURGED.has(table) ? '  (purged after retention.delivered)' : ''}`);
}
console.log(`${sent} offline messages of ${TEXT} bytes, one conversation each, delivered:`);
for (const l of lines.sort()) console.log(l);
console.log(`  spool + trace (purged): ${(purged / sent).toFixed(0)} bytes/message; mailbox items + change log (kept, the users' mail): ${(kept / sent).toFixed(0)} bytes/message`);
const perDay = 100_000;
console.log(`  at ${perDay} messages/day: spool + trace ${((purged * perDay) / sent / 1e6).toFixed(0)} MB/day, ${((purged * perDay * 30) / sent / 1e9).toFixed(2)} GB with 30 days kept; mailboxes grow ${((kept * perDay) / sent / 1e6).toFixed(0)} MB/day until users delete`);
