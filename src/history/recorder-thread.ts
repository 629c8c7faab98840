// The history recorder's thread (see recorder.ts): its own connection to the database file, one
// transaction per batch it is sent (src/storage's serveBatches).

import { serveBatches } from '../storage/index.ts';
import { writeHistoryBatch } from './commit.ts';

serveBatches(writeHistoryBatch);
