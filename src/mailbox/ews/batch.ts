import { errorMessage, successMessage } from './write.ts';
import { toEwsError } from './codes.ts';

/**
 * One response message for one requested item: Success with what `fn` returns, or Error with the
 * ResponseCode of what it threw (EWS answers a batch item by item; one bad id fails only itself).
 */
export function responseMessage(name: string, fn: () => string): string {
  try {
    return successMessage(name, fn());
  } catch (error) {
    return errorMessage(name, toEwsError(error));
  }
}
