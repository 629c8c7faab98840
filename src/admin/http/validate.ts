// The schema of a cmdlet call is the cmdlet's own parameter list (ParameterSpec): the API checks
// a JSON body against it here, with the messages and codes of the command-line parser (parse.ts),
// so both modes answer a mistake the same way.
//
//   POST /admin/cmdlets/Set-CsImConfiguration
//   {"parameters": {"Identity": "Global", "EnableOfflineIm": false, "OfflineImPickupDelay": "00:05:00"}}
//
// Parameter names: the full name, any case (no prefixes: an API call names what it means).
// Values: JSON booleans, numbers, strings and null; a string is also read as the command line
// reads it ("$False", "00:02:00", "42"). TimeSpans are strings. null is $Null.

import { formatTimeSpan } from '../../settings/index.ts';
import { AdminError } from '../errors.ts';
import { badValue, checkRequired, convert, unknownParameter } from '../parse.ts';
import type { ArgValue, BoundArgs, CmdletSpec, ParameterSpec } from '../types.ts';
import { AdminApiError } from './problem.ts';

/** A JSON value as sent for one parameter. */
export type WireValue = string | number | boolean | null;

/** The `parameters` object of a cmdlet call's body ({} when there is no body). */
export function parametersOf(body: unknown): Readonly<Record<string, unknown>> {
  if (body === undefined) return {};
  if (!isPlainObject(body)) throw new AdminApiError('BAD_BODY', `the body is ${describe(body)}; send an object: {"parameters": {"Name": value, ...}}`);
  for (const key of Object.keys(body)) {
    if (key !== 'parameters') throw new AdminApiError('BAD_BODY', `the body has a member "${clip(key)}"; the only member is "parameters": {"parameters": {"Name": value, ...}}`);
  }
  const parameters = body.parameters;
  if (parameters === undefined) return {};
  if (!isPlainObject(parameters)) throw new AdminApiError('BAD_BODY', `"parameters" is ${describe(parameters)}; it is an object of parameter names and values`);
  return parameters;
}

/** Binds the JSON parameters to the cmdlet's, converting and checking each value. */
export function bindJsonParameters(cmdlet: CmdletSpec, parameters: Readonly<Record<string, unknown>>): BoundArgs {
  const bound: Record<string, ArgValue> = {};
  for (const [name, value] of Object.entries(parameters)) {
    const param = cmdlet.parameters.find((p) => p.name.toLowerCase() === name.toLowerCase());
    if (param === undefined) throw unknownParameter(cmdlet, clip(name));
    if (Object.hasOwn(bound, param.name)) throw new AdminError('BAD_SYNTAX', `${cmdlet.name}: -${param.name} is given more than once`);
    bound[param.name] = valueOf(cmdlet, param, value);
  }
  checkRequired(cmdlet, bound);
  return bound;
}

function valueOf(cmdlet: CmdletSpec, param: ParameterSpec, value: unknown): ArgValue {
  if (value === null) return convert(cmdlet, param, '$Null');
  if (param.type === 'string') {
    if (typeof value === 'string') return value;
  } else if (typeof value === 'boolean') {
    if (param.type === 'bool' || param.type === 'switch') return value;
  } else if (typeof value === 'string' || typeof value === 'number') {
    return convert(cmdlet, param, String(value));
  }
  throw badValue(cmdlet, param, clip(JSON.stringify(value) ?? String(value)));
}

/**
 * The JSON form of arguments bound by the command-line parser (the remote CLI sends these):
 * TimeSpans as `00:02:00`, $Null as null, the rest as they are.
 */
export function toWireParameters(cmdlet: CmdletSpec, bound: BoundArgs): Record<string, WireValue> {
  const wire: Record<string, WireValue> = {};
  for (const param of cmdlet.parameters) {
    const value = bound[param.name];
    if (value === undefined) continue;
    wire[param.name] = param.type === 'timespan' && typeof value === 'number' ? formatTimeSpan(value) : value;
  }
  return wire;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

/** Names and values echoed in messages are kept short. */
function clip(text: string): string {
  return text.length <= 80 ? text : `${text.slice(0, 77)}...`;
}
