// PowerShell-like arguments: `Verb-Noun -Param Value -Switch -Param:Value positional`.
// Cmdlet and parameter names are case-insensitive; a unique prefix of a parameter name is
// accepted, as PowerShell does. Values: `$True`/`$False`/`$Null` (any case; also True, False,
// 1, 0), quoted strings (see tokenize), TimeSpans. Every check happens here, in one place, before
// any handler runs.
//
// A shell expands an unquoted `$False` to nothing, so `-EnableOfflineIM $False` typed in bash
// arrives as `-EnableOfflineIM` alone: that is an error (never read as True) whose message says
// to quote the value.

import { SettingsError, parseTimeSpan } from '../settings/index.ts';
import { AdminError } from './errors.ts';
import type { ArgValue, BoundArgs, CmdletSpec, ParameterSpec, ParameterType } from './types.ts';

export const TYPE_NAMES: Readonly<Record<ParameterType, string>> = {
  string: 'a string',
  bool: 'a Boolean ($True or $False)',
  timespan: 'a TimeSpan (hh:mm:ss or d.hh:mm:ss, e.g. 00:02:00)',
  int: 'a whole number',
  switch: 'a switch (no value)',
};

/**
 * Splits a command line the way PowerShell would for our purposes: whitespace separates,
 * '…' and "…" quote (no variable expansion; a doubled quote inside stands for one).
 */
export function tokenize(line: string): string[] {
  const tokens: string[] = [];
  let current: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const ch = line[i] ?? '';
    if (ch === "'" || ch === '"') {
      current ??= '';
      let j = i + 1;
      for (;;) {
        if (j >= line.length) throw new AdminError('BAD_SYNTAX', `the quote ${ch} opened at character ${i + 1} is never closed`);
        if (line[j] === ch) {
          if (line[j + 1] === ch) {
            current += ch;
            j += 2;
            continue;
          }
          break;
        }
        current += line[j];
        j++;
      }
      i = j;
    } else if (/\s/.test(ch)) {
      if (current !== undefined) tokens.push(current);
      current = undefined;
    } else {
      current = (current ?? '') + ch;
    }
  }
  if (current !== undefined) tokens.push(current);
  return tokens;
}

/** The cmdlet named (any case); UNKNOWN_CMDLET with the closest name otherwise. */
export function findCmdlet(cmdlets: readonly CmdletSpec[], name: string): CmdletSpec {
  const found = cmdlets.find((c) => c.name.toLowerCase() === name.toLowerCase());
  if (found !== undefined) return found;
  const closest = closestName(name, cmdlets.map((c) => c.name));
  throw new AdminError('UNKNOWN_CMDLET', `"${name}" is not a cmdlet${closest === undefined ? '' : `; did you mean ${closest}?`} (parley admin --help lists them)`);
}

/** Binds the arguments after the cmdlet name to its parameters, converting each value. */
export function bindArguments(cmdlet: CmdletSpec, tokens: readonly string[]): BoundArgs {
  const bound: Record<string, ArgValue> = {};
  const positional = cmdlet.parameters.filter((p) => p.position !== undefined).sort((a, b) => (a.position ?? 0) - (b.position ?? 0));
  let nextPosition = 0;
  const set = (param: ParameterSpec, value: ArgValue) => {
    if (Object.hasOwn(bound, param.name)) throw new AdminError('BAD_SYNTAX', `${cmdlet.name}: -${param.name} is given more than once`);
    bound[param.name] = value;
  };
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i] ?? '';
    const named = /^-([A-Za-z][A-Za-z0-9]*)(?::(.*))?$/s.exec(token);
    if (named === null) {
      // skip positions already filled by name
      while (positional[nextPosition] !== undefined && Object.hasOwn(bound, positional[nextPosition]?.name ?? '')) nextPosition++;
      const param = positional[nextPosition++];
      if (param === undefined) throw new AdminError('BAD_SYNTAX', `${cmdlet.name}: unexpected argument "${token}"; values follow a parameter name, e.g. -Identity <value>`);
      set(param, convert(cmdlet, param, token));
      continue;
    }
    const param = resolveParameter(cmdlet, named[1] ?? '');
    const inline = named[2];
    if (param.type === 'switch') {
      set(param, inline === undefined ? true : convert(cmdlet, { ...param, type: 'bool' }, inline));
      continue;
    }
    if (inline !== undefined) {
      set(param, convert(cmdlet, param, inline));
      continue;
    }
    const value = tokens[i + 1];
    if (value === undefined || /^-[A-Za-z]/.test(value)) throw missingValue(cmdlet, param);
    set(param, convert(cmdlet, param, value));
    i++;
  }
  checkRequired(cmdlet, bound);
  return bound;
}

/** MISSING_PARAMETER for the first required parameter not bound. */
export function checkRequired(cmdlet: CmdletSpec, bound: BoundArgs): void {
  for (const param of cmdlet.parameters) {
    if (param.required === true && !Object.hasOwn(bound, param.name)) {
      throw new AdminError('MISSING_PARAMETER', `${cmdlet.name} needs -${param.name} (${TYPE_NAMES[param.type]})`);
    }
  }
}

function resolveParameter(cmdlet: CmdletSpec, name: string): ParameterSpec {
  const lower = name.toLowerCase();
  const exact = cmdlet.parameters.find((p) => p.name.toLowerCase() === lower);
  if (exact !== undefined) return exact;
  const prefixed = cmdlet.parameters.filter((p) => p.name.toLowerCase().startsWith(lower));
  if (prefixed.length === 1 && prefixed[0] !== undefined) return prefixed[0];
  if (prefixed.length > 1) {
    throw new AdminError('AMBIGUOUS_PARAMETER', `${cmdlet.name}: -${name} could be ${prefixed.map((p) => `-${p.name}`).join(' or ')}; write more of the name`);
  }
  throw unknownParameter(cmdlet, name);
}

/** UNKNOWN_PARAMETER, with the closest name and the valid ones. */
export function unknownParameter(cmdlet: CmdletSpec, name: string): AdminError {
  const valid = cmdlet.parameters.map((p) => `-${p.name}`).join(', ');
  const closest = closestName(name, cmdlet.parameters.map((p) => p.name));
  const hint = closest === undefined ? '' : ` (did you mean -${closest}?)`;
  return new AdminError('UNKNOWN_PARAMETER', `${cmdlet.name} has no parameter -${name}${hint}; ${valid === '' ? 'it takes no parameters' : `its parameters are ${valid}`}`);
}

/** A value written as text (`$False`, `00:02:00`, `42`) converted to the parameter's type; BAD_VALUE otherwise. */
export function convert(cmdlet: CmdletSpec, param: ParameterSpec, raw: string): ArgValue {
  const text = raw.trim();
  if (/^\$null$/i.test(text)) {
    if (param.nullable === true) return null;
    throw badValue(cmdlet, param, raw, `$Null is not allowed here`);
  }
  switch (param.type) {
    case 'string':
      return raw;
    case 'bool':
    case 'switch': {
      if (/^\$?true$|^1$/i.test(text)) return true;
      if (/^\$?false$|^0$/i.test(text)) return false;
      throw badValue(cmdlet, param, raw);
    }
    case 'int':
      if (/^\d{1,9}$/.test(text)) return Number(text);
      throw badValue(cmdlet, param, raw);
    case 'timespan':
      try {
        return parseTimeSpan(text);
      } catch (error) {
        if (error instanceof SettingsError) throw badValue(cmdlet, param, raw, error.message);
        throw error;
      }
  }
}

export function badValue(cmdlet: CmdletSpec, param: ParameterSpec, raw: string, detail?: string): AdminError {
  const shown = param.secret === true ? '***' : JSON.stringify(raw);
  return new AdminError('BAD_VALUE', `${cmdlet.name}: -${param.name} takes ${TYPE_NAMES[param.type]}, not ${shown}${detail === undefined ? '' : `: ${detail}`}`);
}

function missingValue(cmdlet: CmdletSpec, param: ParameterSpec): AdminError {
  const shellHint = param.type === 'bool' || param.nullable === true
    ? `; if you typed $True, $False or $Null, your shell replaced it by nothing: quote it ('$False') or write False`
    : '';
  return new AdminError('MISSING_PARAMETER', `${cmdlet.name}: -${param.name} needs a value (${TYPE_NAMES[param.type]})${shellHint}`);
}

/** The candidate nearest to `name` by edit distance (case-insensitive), if reasonably near. */
export function closestName(name: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of candidates) {
    const d = editDistance(name.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return bestDistance <= Math.max(3, Math.floor(name.length / 2)) ? best : undefined;
}

/** Levenshtein distance. */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current[j] = Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, (previous[j - 1] ?? 0) + cost);
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

/** `-Filter` patterns: `*` any run, `?` one character, case-insensitive, whole string. */
export function wildcard(pattern: string): RegExp {
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${source}$`, 'i');
}

export function syntaxOf(cmdlet: CmdletSpec): string {
  const parts = cmdlet.parameters.map((p) => {
    const name = p.position === undefined ? `-${p.name}` : `[-${p.name}]`;
    const value = p.type === 'switch' ? '' : ` <${p.type === 'bool' ? 'Boolean' : p.type === 'timespan' ? 'TimeSpan' : p.type === 'int' ? 'Int' : 'String'}>`;
    return p.required === true ? `${name}${value}` : `[${name}${value}]`;
  });
  return [cmdlet.name, ...parts].join(' ');
}
