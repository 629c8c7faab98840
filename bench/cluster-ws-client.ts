// The cluster WebSocket scenario's load generator for one node (bench/cluster.ts starts one per
// node: a process holds one open file per connection, and 50,000 do not fit in one here). Opens
// the idle registrations (bench/ws-load.ts), prints `registered {"registered":…,"failed":…}` and
// keeps them open until it is killed.
//
//   node bench/cluster-ws-client.ts '{"url":"ws://…","domain":"…","password":"…","prefix":"cw","users":50000,"first":0,"count":16667}'

import { wsUserName } from './cluster.ts';
import { openIdleRegistrations } from './ws-load.ts';

interface Args {
  url: string;
  domain: string;
  password: string;
  /** users are <prefix><6 digits>, 0 … users-1 (bench/cluster.ts seeds them) */
  prefix: string;
  users: number;
  first: number;
  count: number;
}

const args = JSON.parse(process.argv[2] ?? '{}') as Args;
// connection i registers user i: one registration per user
const users = Array.from({ length: args.users }, (_, i) => wsUserName(args.prefix, i));
const result = await openIdleRegistrations({ url: args.url, domain: args.domain, users, password: args.password, count: args.count, first: args.first });
process.stdout.write(`registered ${JSON.stringify({ registered: result.registered, failed: result.failed, firstError: result.firstError })}\n`);
// held open until the bench kills this process
setInterval(() => {}, 1 << 30);
