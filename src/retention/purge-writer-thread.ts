// Retention's part of the batch writers' thread (see scheduler.ts): each batch it is sent is one run
// on the thread's connection, its result sent back (src/storage's serveBatches).

import { serveBatches } from '../storage/index.ts';
import { writeRuns } from './run.ts';

serveBatches(writeRuns);
