// The EWS HttpRoute on a node:http server of the test's own (loopback, no `parley serve`): Basic
// auth, methods, content types, and the size limit enforced while the body arrives.
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { DIRECTORY_MIGRATIONS, addUser } from '../../src/directory/index.ts';
import { MAILBOX_MIGRATIONS, createAutodiscoverRoute, createEwsRoute } from '../../src/mailbox/index.ts';
import { childElement, childText, parseXml } from '../../src/xml/index.ts';
import { isSecureOrLocal } from '../../src/auth/http-basic.ts';
import { OwnNames } from '../../src/server/own-names.ts';
import type { HttpRoute } from '../../src/server/http.ts';
import type { SqlDatabase } from '../../src/storage/index.ts';
import { migrate, openMemoryDatabase, runMigrations, sqliteSql } from '../../src/storage/index.ts';
import { ENGINES, closeTestPostgres } from '../harness/engines.ts';
import { BasicSignIn } from '../../src/auth/http-basic.ts';
import { findUser } from '../../src/directory/index.ts';

// the users in a SQLite directory; the mailboxes on the engine of the describe that runs
const db = openMemoryDatabase();
runMigrations(db, [DIRECTORY_MIGRATIONS]);
const signIn = new BasicSignIn({ sql: sqliteSql(db), domain: 'parley.test' });
let route: HttpRoute | undefined;
// this machine, as the route sees it: a fixed host name and addresses, not the test runner's
const names = new OwnNames({
  listen: '127.0.0.1', domain: 'parley.test', publicHosts: ['im.example.com'], httpPort: () => (server.address() as AddressInfo).port,
  system: { hostname: () => 'parley-host', addresses: () => ['127.0.0.1', '192.0.2.10', 'fe80::1'] },
});
const warnings: string[] = [];
const logger = pino({ level: 'warn' }, { write: (line: string) => void warnings.push(line) });
const autodiscover = createAutodiscoverRoute({ signIn, displayName: async (a) => (await findUser(sqliteSql(db), a))?.displayName ?? null, logger, domain: 'parley.test', product: 'Parley/test', names });
const server = http.createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://localhost');
  if (!route?.handle(req, res, url) && !autodiscover.handle(req, res, url)) {
    res.writeHead(404);
    res.end();
  }
});
let url = '';
before(async () => {
  await addUser(sqliteSql(db), { address: 'alice@parley.test', password: 'alice-pw' });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/ews/Exchange.asmx`;
});
after(() => new Promise<void>((resolve) => server.close(() => resolve())));
after(closeTestPostgres);

const auth = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const envelope = `<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types"><s:Body><m:GetFolder><m:FolderShape><t:BaseShape>IdOnly</t:BaseShape></m:FolderShape><m:FolderIds><t:DistinguishedFolderId Id="conversationhistory"/></m:FolderIds></m:GetFolder></s:Body></s:Envelope>`;
const post = (body: string, headers: Record<string, string> = {}) => fetch(url, { method: 'POST', headers: { 'content-type': 'text/xml', ...headers }, body });

for (const engine of ENGINES) describe(`EWS and autodiscover routes, mailboxes on ${engine.name}`, () => {
  let sql: SqlDatabase;
  before(async () => {
    sql = await engine.open();
    await migrate(sql, [MAILBOX_MIGRATIONS]);
    route = createEwsRoute({ sql, signIn, userExists: async (a) => (await findUser(sqliteSql(db), a)) !== undefined, logger: pino({ level: 'silent' }), domain: 'parley.test', product: 'Parley/test', limits: { maxBytes: 64 * 1024, maxDepth: 32, maxElements: 1000 } });
    warnings.length = 0;
  });
  after(() => sql.close());

describe('EWS HTTP route', () => {
  it('serves only with the right Basic credentials, accepting alice, alice@domain and DOMAIN\\alice', async () => {
    for (const headers of [{} as Record<string, string>, { authorization: auth('alice', 'wrong') }, { authorization: auth('mallory', 'alice-pw') }, { authorization: 'Bearer x' }]) {
      const res = await post(envelope, headers);
      assert.equal(res.status, 401);
      assert.equal(res.headers.get('www-authenticate'), 'Basic realm="parley.test", charset="UTF-8"');
    }
    for (const user of ['alice', 'ALICE@parley.test', 'PARLEY\\alice']) {
      const res = await post(envelope, { authorization: auth(user, 'alice-pw') });
      assert.equal(res.status, 200, user);
      assert.match(await res.text(), /ResponseClass="Success"/);
    }
  });

  it('refuses other methods and content types, and oversized bodies while they arrive', async () => {
    const ok = { authorization: auth('alice', 'alice-pw') };
    assert.equal((await fetch(url, { method: 'PUT', headers: ok, body: 'x' })).status, 405);
    const wsdlPut = await fetch(url.replace('Exchange.asmx', 'Services.wsdl'), { method: 'POST', headers: ok, body: envelope });
    assert.equal(wsdlPut.status, 405);
    assert.equal(wsdlPut.headers.get('allow'), 'GET, HEAD');
    assert.equal((await post(envelope, { ...ok, 'content-type': 'application/json' })).status, 415);
    const big = await post(envelope.replace('<m:GetFolder>', `<m:GetFolder><!--${'x'.repeat(100 * 1024)}-->`), ok);
    assert.equal(big.status, 413);
    // chunked, without Content-Length: refused by the streaming reader
    const chunks = new ReadableStream({
      start(c) {
        for (let i = 0; i < 100; i++) c.enqueue(new TextEncoder().encode(i === 0 ? '<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><!--' : 'y'.repeat(1024)));
        c.close();
      },
    });
    const streamed = await fetch(url, { method: 'POST', headers: { 'content-type': 'text/xml', ...ok }, body: chunks, duplex: 'half' } as RequestInit).catch((e: unknown) => e);
    assert.ok(streamed instanceof Response, `an answer, not ${String(streamed)}`);
    assert.equal(streamed.status, 413);
    const deep = await post(`<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>${'<a>'.repeat(40)}${'</a>'.repeat(40)}</s:Body></s:Envelope>`, ok);
    assert.equal(deep.status, 500);
    assert.match(await deep.text(), /XML_TOO_DEEP/);
    assert.equal((await post(envelope, ok)).status, 200, 'still serving');
  });
});

describe('EWS GET probes and the service description', () => {
  const ok = { authorization: auth('alice', 'alice-pw') };
  const base = () => url.slice(0, url.indexOf('/ews/'));
  const probes = ['/EWS/Exchange.asmx', '/ews/exchange.asmx', '/Ews/EXCHANGE.ASMX', '/EWS/Exchange.asmx?wsdl', '/EWS/Exchange.asmx?WSDL', '/EWS/Services.wsdl', '/ews/services.wsdl'];

  it('answers GET and HEAD without credentials 401 with the Basic challenge, in any case of the path', async () => {
    for (const path of probes) {
      for (const method of ['GET', 'HEAD']) {
        const res = await fetch(base() + path, { method });
        assert.equal(res.status, 401, `${method} ${path}`);
        assert.equal(res.headers.get('www-authenticate'), 'Basic realm="parley.test", charset="UTF-8"');
      }
      assert.equal((await fetch(base() + path, { headers: { authorization: auth('alice', 'wrong') } })).status, 401);
    }
  });

  it('answers GET with credentials 200 and a WSDL of the operations served, bound to the EWS URL; HEAD the same headers without a body', async () => {
    for (const path of probes) {
      const res = await fetch(base() + path, { headers: ok });
      assert.equal(res.status, 200, path);
      assert.equal(res.headers.get('content-type'), 'text/xml; charset=utf-8');
      const wsdl = parseXml(await res.text());
      const W = 'http://schemas.xmlsoap.org/wsdl/';
      assert.equal(wsdl.name, 'definitions');
      assert.equal(wsdl.ns, W);
      const portType = childElement(wsdl, W, 'portType');
      const ops = portType?.children.map((c) => c.attrs.get('name'));
      for (const op of ['GetFolder', 'FindFolder', 'FindItem', 'GetItem', 'CreateItem', 'ConvertId']) assert.ok(ops?.includes(op), `${op} in ${ops?.join(',')}`);
      const address = childElement(childElement(childElement(wsdl, W, 'service')!, W, 'port')!, 'http://schemas.xmlsoap.org/wsdl/soap/', 'address');
      assert.equal(address?.attrs.get('location'), `http://127.0.0.1:${new URL(url).port}/EWS/Exchange.asmx`);
      const head = await fetch(base() + path, { method: 'HEAD', headers: ok });
      assert.equal(head.status, 200);
      assert.equal(head.headers.get('content-length'), res.headers.get('content-length'));
      assert.equal(await head.text(), '');
    }
  });

  it('serves a POST without RequestServerVersion as one with it', async () => {
    const withVersion = envelope.replace('<s:Body>', '<s:Header><t:RequestServerVersion Version="Exchange2010_SP2"/></s:Header><s:Body>');
    for (const body of [envelope, withVersion]) {
      const res = await post(body, ok);
      assert.equal(res.status, 200);
      assert.match(await res.text(), /ResponseClass="Success"/);
    }
  });
});

describe('where Basic passwords may travel', () => {
  it('over TLS or from loopback only', () => {
    const peer = (remoteAddress: string, encrypted = false) => ({ socket: { remoteAddress, encrypted } }) as unknown as http.IncomingMessage;
    assert.equal(isSecureOrLocal(peer('127.0.0.1')), true);
    assert.equal(isSecureOrLocal(peer('::1')), true);
    assert.equal(isSecureOrLocal(peer('::ffff:127.0.0.1')), true);
    assert.equal(isSecureOrLocal(peer('192.0.2.7')), false);
    assert.equal(isSecureOrLocal(peer('192.0.2.7', true)), true);
  });
});

describe('autodiscover (POX)', () => {
  const ask = (address: string, user = 'alice') =>
    fetch(url.replace('/ews/Exchange.asmx', '/Autodiscover/Autodiscover.xml'), {
      method: 'POST',
      headers: { 'content-type': 'text/xml', authorization: auth(user, 'alice-pw') },
      body: `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>${address}</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`,
    });
  const OUTLOOK = 'http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a';

  it('gives the user the EWS URL of their own mailbox', async () => {
    const res = await ask('alice@parley.test');
    assert.equal(res.status, 200);
    const root = parseXml(await res.text());
    const account = childElement(childElement(root, OUTLOOK, 'Response')!, OUTLOOK, 'Account')!;
    const protocols = account.children.filter((c) => c.name === 'Protocol');
    assert.deepEqual(protocols.map((p) => childText(p, OUTLOOK, 'Type')), ['EXCH', 'EXPR']);
    assert.equal(childText(protocols[0]!, OUTLOOK, 'EwsUrl'), url.replace('/ews/Exchange.asmx', '/EWS/Exchange.asmx'));
  });

  /** POST with a Host header of our choosing (fetch does not let the caller set Host): the EwsUrl answered. */
  function askWithHost(host: string): Promise<string> {
    const target = new URL(url);
    const body = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@parley.test</EMailAddress></Request></Autodiscover>`;
    return new Promise((resolve, reject) => {
      const req = http.request({ host: target.hostname, port: target.port, path: '/autodiscover/autodiscover.xml', method: 'POST', headers: { host, 'content-type': 'text/xml', authorization: auth('alice', 'alice-pw') } }, (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (text += c));
        res.on('end', () => resolve(/<EwsUrl>([^<]*)<\/EwsUrl>/.exec(text)?.[1] ?? `(no EwsUrl in ${res.statusCode} ${text})`));
      });
      req.on('error', reject);
      req.end(body);
    });
  }

  it("names a Host only when it is one of the server's names, else its own address, with a warning in the log", async () => {
    const port = (server.address() as AddressInfo).port;
    const own = `http://127.0.0.1:${port}/EWS/Exchange.asmx`;
    warnings.length = 0;
    for (const host of ['evil.example', 'evil.example:8080', 'parley.test.evil.example', 'evil.example@127.0.0.1', '127.0.0.1.nip.io', '[::2]:80']) {
      assert.equal(await askWithHost(host), own, host);
    }
    assert.equal(warnings.length, 6);
    assert.match(warnings[0] ?? '', /"host":"evil\.example".*is not a name of this server/);
    warnings.length = 0;
    const accepted: Array<[string, string]> = [
      [`localhost:${port}`, `localhost:${port}`],
      ['Autodiscover.Parley.Test', 'autodiscover.parley.test'],
      ['im.example.com:443', 'im.example.com:443'],
      ['parley-host', 'parley-host'],
      ['192.0.2.10:8080', '192.0.2.10:8080'],
      ['[fe80::1]:8080', '[fe80::1]:8080'],
    ];
    for (const [host, authority] of accepted) assert.equal(await askWithHost(host), `http://${authority}/EWS/Exchange.asmx`, host);
    assert.deepEqual(warnings, []);
  });

  it('tells nothing about other addresses, and asks for credentials', async () => {
    assert.match(await (await ask('bob@parley.test')).text(), /<ErrorCode>500<\/ErrorCode>/);
    assert.equal((await ask('alice@parley.test', 'nobody')).status, 401);
  });
});
});
