// The spool writer's thread (see spool-writer.ts): its own connection to the database file, one
// transaction per batch it is sent, the receipts (or the error) sent back (src/storage's serveBatches).

import { serveBatches } from '../storage/index.ts';
import { writeBatch } from './spool-writer.ts';

serveBatches(writeBatch);
