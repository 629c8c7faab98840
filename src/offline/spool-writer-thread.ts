// The spool writer's thread (see spool-writer.ts): its own connection to the database file, one
// transaction per batch it is sent, the receipts (or the error) sent back.

import { parentPort, workerData } from 'node:worker_threads';
import { openDatabaseFile } from '../storage/index.ts';
import { writeBatch } from './spool-writer.ts';
import type { ThreadReply, ThreadRequest } from './spool-writer.ts';

const port = parentPort;
if (port === null) throw new Error('spool-writer-thread.ts runs as a worker thread of the spool writer');
const db = openDatabaseFile((workerData as { file: string }).file);

port.on('message', (request: ThreadRequest) => {
  if (request.kind === 'close') {
    db.close();
    port.close();
    return;
  }
  let reply: ThreadReply;
  try {
    reply = { id: request.id, results: writeBatch(db, request.jobs) };
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    reply = { id: request.id, error: { message: err instanceof Error ? err.message : String(err), ...(typeof code === 'string' ? { code } : {}) } };
  }
  port.postMessage(reply);
});
