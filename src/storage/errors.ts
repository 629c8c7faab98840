import { ParleyError } from '../errors.ts';

/** Every code a StorageError may carry; the message says what to do about it. */
export type StorageErrorCode =
  /** the data directory cannot be created or is not a directory */
  | 'DATA_DIR_UNUSABLE'
  /** SQLite could not open the database file or set it up */
  | 'DATABASE_OPEN_FAILED'
  /** a transaction callback returned a promise (DatabaseSync transactions are synchronous) */
  | 'ASYNC_TRANSACTION'
  /** a transaction's handle was used after the transaction ended (a bug in the caller) */
  | 'TRANSACTION_ENDED'
  /** a migration list in the code is itself wrong (duplicate or empty id): a bug, not an operator error */
  | 'MIGRATION_INVALID'
  /** the database holds migrations this build does not know (it was migrated by a newer Parley) */
  | 'MIGRATION_UNKNOWN'
  /** an applied migration's SQL differs from the one in this build */
  | 'MIGRATION_CHANGED'
  /** the SQL of a pending migration failed; nothing of that run was applied */
  | 'MIGRATION_FAILED'
  /** `parley backup` could not write its copy */
  | 'BACKUP_FAILED'
  /** `parley restore` could not put the copy in place */
  | 'RESTORE_FAILED'
  /** the file given to `parley restore` is not a sound Parley database */
  | 'NOT_A_PARLEY_DATABASE';

export class StorageError extends ParleyError {
  declare readonly code: StorageErrorCode;

  constructor(code: StorageErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
