// What other capabilities may use of storage.
export type { Database, OpenDatabaseOptions } from './database.ts';
export { changeStamp, databaseSize, DATABASE_FILE, DEFAULT_BUSY_TIMEOUT_MS, openDatabase, openDatabaseFile, openMemoryDatabase, statement, transaction } from './database.ts';
export type { AppliedMigration, Migration, MigrationSet } from './migrations.ts';
export { appliedMigrations, listAppliedMigrations, migrate, migrationSql, runMigrations } from './migrations.ts';
export type { Sql, SqlDatabase, SqlEngine, SqlRunResult, SqlValue, TransactionOptions } from './sql.ts';
export { isUniqueViolation } from './sql.ts';
export { SqliteSql, sqliteSql } from './sqlite-sql.ts';
export type { PostgresOptions } from './postgres-sql.ts';
export { openPostgres, PostgresSql, sqlState } from './postgres-sql.ts';
export type { StorageErrorCode } from './errors.ts';
export { StorageError } from './errors.ts';
export type { DatabaseSummary } from './backup.ts';
export { backupDatabase, checkParleyDatabase, restoreDatabase } from './backup.ts';
export type { BatchWrite, BatchWriter, BatchWriterThread, ThreadBatchWriterOptions } from './batch-writer.ts';
export { loopBatchWriter, openBatchWriter, serveBatches, sqliteFileOf, ThreadBatchWriter } from './batch-writer.ts';
export type { VersionedCacheOptions } from './version-cache.ts';
export { VersionedCache } from './version-cache.ts';
