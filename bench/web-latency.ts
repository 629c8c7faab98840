// The web client measured (issue 13; a measurement, not a test): the time from a message sent in
// one browser to its display in the other, p50 and p99 over 200 messages on loopback, and the size
// of what the first screen loads. Run inside the tests' network namespace:
//
//   bash scripts/netns-run.sh node bench/web-latency.ts [--messages 200]
//
// Alice and bob are signed in to a real `parley serve` in two contexts of Debian's Chromium (the
// test harness). Each message is typed and sent by script in alice's page (the clock read just
// before the Enter key event), and bob's page notes when the bubble is added to its DOM (a
// MutationObserver); both pages read the same machine clock (performance.timeOrigin + now()).
// One message at a time: this is latency, not throughput.

import { buildWebBundle } from '../src/web/index.ts';
import { addContact, launchBrowser, openChat, openClient, signIn } from '../test/harness/browser.ts';
import { startServer } from '../test/harness/server.ts';

const at = process.argv.indexOf('--messages');
const COUNT = at > 0 ? Number(process.argv[at + 1]) : 200;
if (!Number.isInteger(COUNT) || COUNT < 1) throw new Error(`--messages ${process.argv[at + 1]}: expected a whole number`);
const DOMAIN = 'bench.test';

const bundle = await buildWebBundle();
const css = [...bundle.assets.values()].find((a) => a.name.endsWith('.css'));

const server = await startServer({
  domain: DOMAIN,
  users: [
    { address: `alice@${DOMAIN}`, password: 'alice-pw', displayName: 'Alice' },
    { address: `bob@${DOMAIN}`, password: 'bob-pw', displayName: 'Bob' },
  ],
});
const browser = await launchBrowser();
const latencies: number[] = [];
try {
  await addContact(server, { user: 'alice', password: 'alice-pw' }, 'bob');
  await addContact(server, { user: 'bob', password: 'bob-pw' }, 'alice');
  const alice = await openClient(browser, server);
  const bob = await openClient(browser, server);
  await signIn(alice.page, 'alice', 'alice-pw');
  await signIn(bob.page, 'bob', 'bob-pw');
  await openChat(bob.page, `alice@${DOMAIN}`);
  await openChat(alice.page, `bob@${DOMAIN}`);
  // (code that runs in the pages is given as text: the root project has no DOM types)
  await bob.page.evaluate(`
    globalThis.seen = {};
    new MutationObserver((records) => {
      const now = performance.timeOrigin + performance.now();
      for (const r of records) for (const node of r.addedNodes)
        if (node instanceof HTMLElement && node.matches('.message.in')) globalThis.seen[node.querySelector('.bubble')?.textContent ?? ''] = now;
    }).observe(document.querySelector('.message-list'), { childList: true });
  `);
  for (let i = 0; i < COUNT; i++) {
    const text = `latency probe ${i}`;
    const sentAt = (await alice.page.evaluate(`(() => {
      const box = document.querySelector('#composer-input');
      box.value = ${JSON.stringify(text)};
      box.dispatchEvent(new Event('input', { bubbles: true }));
      const t = performance.timeOrigin + performance.now();
      box.dispatchEvent(new KeyboardEvent('keydown', { key: 'Enter', bubbles: true, cancelable: true }));
      return t;
    })()`)) as number;
    // (a function, not text: text would be eval'd in the page, which its CSP forbids)
    const shownAt = await bob.page.waitForFunction((value) => (globalThis as unknown as { seen: Record<string, number> }).seen[value], text, { polling: 'raf' });
    latencies.push(((await shownAt.jsonValue()) as number) - sentAt);
  }
} finally {
  await browser.close();
  await server.stop();
}

const sorted = [...latencies].sort((a, b) => a - b);
const pct = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;
const kb = (n: number): string => `${(n / 1024).toFixed(1)} KB`;
const rows: Array<[string, string]> = [
  [`send → display, p50 (${COUNT} messages)`, `${pct(50).toFixed(1)} ms`],
  [`send → display, p99 (${COUNT} messages)`, `${pct(99).toFixed(1)} ms`],
  ['send → display, max', `${(sorted.at(-1) ?? NaN).toFixed(1)} ms`],
  ['first-screen JavaScript, gzipped', `${kb(bundle.script.gzip.length)} (${kb(bundle.script.body.length)} minified)`],
  ['first-screen CSS, gzipped', css ? kb(css.gzip.length) : '-'],
];
const width = Math.max(...rows.map(([k]) => k.length));
console.log(`\nweb client, ${new Date().toISOString().slice(0, 10)}, Debian Chromium, loopback\n`);
console.log(`| ${'measure'.padEnd(width)} | value |`);
console.log(`|${'-'.repeat(width + 2)}|-------|`);
for (const [k, v] of rows) console.log(`| ${k.padEnd(width)} | ${v} |`);
