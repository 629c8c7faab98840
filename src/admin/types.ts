// What a cmdlet module declares, and what its handler gets and returns.

import type { Sql } from '../storage/index.ts';

/** `switch` takes no value (`-Force`); the others take one. */
export type ParameterType = 'string' | 'bool' | 'timespan' | 'int' | 'switch';

export interface ParameterSpec {
  /** as documented, e.g. `EnableOfflineIm`; matched case-insensitively */
  readonly name: string;
  readonly type: ParameterType;
  readonly required?: boolean;
  /** `$Null` is accepted (and passed as null) */
  readonly nullable?: boolean;
  /** the value may be given without the name, at this position (`Get-CsUser alice@x`) */
  readonly position?: number;
  /** never echoed, in output, errors or the audit log */
  readonly secret?: boolean;
  readonly help?: string;
}

/** A bound value: strings, booleans, seconds for timespans, numbers; null for $Null. */
export type ArgValue = string | boolean | number | null;
export type BoundArgs = Readonly<Record<string, ArgValue | undefined>>;

export interface CmdletContext {
  /** the storage handle on either engine (src/storage/sql.ts) */
  readonly sql: Sql;
  /** the domain of a user address written without one */
  readonly domain: string;
  /** who runs the command, for the audit log */
  readonly actor: string;
  readonly now: () => number;
}

/** A TimeSpan to show as `00:02:00`. */
export interface TimeSpanOut {
  readonly timeSpanSeconds: number;
}
export type OutputValue = string | number | boolean | null | Date | TimeSpanOut;
/** One object of output: ordered name/value pairs, Identity first. */
export type OutputObject = ReadonlyArray<readonly [string, OutputValue]>;

export interface CmdletSpec {
  /** `Verb-Noun`, e.g. `Set-CsImConfiguration` */
  readonly name: string;
  readonly synopsis: string;
  readonly parameters: readonly ParameterSpec[];
  run(ctx: CmdletContext, args: BoundArgs): OutputObject[] | Promise<OutputObject[]>;
}

export function timeSpan(seconds: number): TimeSpanOut {
  return { timeSpanSeconds: seconds };
}

export function argString(args: BoundArgs, name: string): string | undefined {
  const v = args[name];
  return typeof v === 'string' ? v : undefined;
}
