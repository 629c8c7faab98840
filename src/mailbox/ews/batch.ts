import { errorMessage, successMessage } from './write.ts';
import { toEwsError } from './codes.ts';

/**
 * One response message for one requested item: Success with what `fn` returns, or Error with the
 * ResponseCode of what it threw (EWS answers a batch item by item; one bad id fails only itself).
 */
export async function responseMessage(name: string, fn: () => Promise<string>): Promise<string> {
  try {
    return successMessage(name, await fn());
  } catch (error) {
    return errorMessage(name, toEwsError(error));
  }
}

/** responseMessage for each entry, one after the other: their effects happen in the order asked. */
export async function responseMessages<T>(name: string, entries: readonly T[], fn: (entry: T) => Promise<string>): Promise<string[]> {
  const out: string[] = [];
  for (const entry of entries) out.push(await responseMessage(name, () => fn(entry)));
  return out;
}
