// The body of a vnd-parley-provisioning NOTIFY (application/vnd.parley.provisioning+json): the
// user's effective settings (CsImConfiguration, CsClientPolicy) and where their mailbox's EWS is.
// Pure: validates the shape and keeps only the fields it knows.

import { ClientError } from './errors.ts';

export const PROVISIONING_EVENT = 'vnd-parley-provisioning';
export const PROVISIONING_TYPE = 'application/vnd.parley.provisioning+json';

export interface ProvisioningSettings {
  EnableOfflineIm: boolean;
  EnableIMAutoArchiving: boolean;
  DisableSavingIM: boolean;
  /** a TimeSpan, `[-][d.]hh:mm:ss[.fffffff]`, e.g. `00:02:00` */
  OfflineImPickupDelay: string;
  /** a TimeSpan, e.g. `1.00:00:00` */
  OfflineImMaxAge: string;
  /** a TimeSpan: a conversation ends after this long without a message (then it is written to Conversation History); absent from older servers */
  ConversationIdleTimeout?: string;
  /** a TimeSpan: a message that asked for a display notification and was not displayed within this becomes a Missed Conversation; `00:00:00`: never; absent from older servers */
  UnreadMissedTimeout?: string;
  /** the EWS endpoint of the user's mailbox (http or https) */
  ewsUrl: string;
  /** which scope each setting came from (`Global`, `Site:Paris`, `Tag:NoArchive`…), when sent */
  sources?: Record<string, string>;
}

const BOOLEANS = ['EnableOfflineIm', 'EnableIMAutoArchiving', 'DisableSavingIM'] as const;
const TIMESPANS = ['OfflineImPickupDelay', 'OfflineImMaxAge'] as const;
/** sent by servers that write Conversation History (issue 14); an older server leaves them out */
const OPTIONAL_TIMESPANS = ['ConversationIdleTimeout', 'UnreadMissedTimeout'] as const;
const TIMESPAN = /^-?(\d{1,8}\.)?\d{1,2}:\d{2}:\d{2}(\.\d{1,7})?$/;

/** Parses the JSON body; throws ClientError INVALID_BODY when it is not JSON or lacks a field. */
export function parseProvisioning(body: string): ProvisioningSettings {
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch (cause) {
    throw new ClientError('INVALID_BODY', 'provisioning body is not JSON', { cause });
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) throw invalid('is not a JSON object');
  const o = data as Record<string, unknown>;
  for (const name of BOOLEANS) if (typeof o[name] !== 'boolean') throw invalid(`${name} is ${show(o[name])}, not true or false`);
  for (const name of TIMESPANS) {
    const value = o[name];
    if (typeof value !== 'string' || !TIMESPAN.test(value)) throw invalid(`${name} is ${show(value)}, not a TimeSpan like "00:02:00"`);
  }
  for (const name of OPTIONAL_TIMESPANS) {
    const value = o[name];
    if (value !== undefined && (typeof value !== 'string' || !TIMESPAN.test(value))) throw invalid(`${name} is ${show(value)}, not a TimeSpan like "00:10:00"`);
  }
  const ewsUrl = o.ewsUrl;
  if (typeof ewsUrl !== 'string' || !isHttpUrl(ewsUrl)) throw invalid(`ewsUrl is ${show(ewsUrl)}, not an http or https URL`);
  const settings: ProvisioningSettings = {
    EnableOfflineIm: o.EnableOfflineIm as boolean,
    EnableIMAutoArchiving: o.EnableIMAutoArchiving as boolean,
    DisableSavingIM: o.DisableSavingIM as boolean,
    OfflineImPickupDelay: o.OfflineImPickupDelay as string,
    OfflineImMaxAge: o.OfflineImMaxAge as string,
    ewsUrl,
  };
  for (const name of OPTIONAL_TIMESPANS) if (typeof o[name] === 'string') settings[name] = o[name];
  const sources = o.sources;
  if (sources !== undefined) {
    if (typeof sources !== 'object' || sources === null || Array.isArray(sources) || !Object.values(sources).every((v) => typeof v === 'string')) {
      throw invalid('sources is not an object of strings');
    }
    settings.sources = { ...(sources as Record<string, string>) };
  }
  return settings;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === 'http:' || url.protocol === 'https:';
  } catch {
    return false;
  }
}

function show(value: unknown): string {
  return value === undefined ? 'missing' : JSON.stringify(value);
}

function invalid(why: string): ClientError {
  return new ClientError('INVALID_BODY', `provisioning body: ${why}`);
}
