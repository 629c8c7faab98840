// The batch writers' thread (batch-writer.ts): one per database file, shared by the writers of that
// file; each writer's entry file (spool-writer-thread.ts, recorder-thread.ts) is imported into it.

import { hostBatchWriters } from './batch-writer.ts';

hostBatchWriters();
