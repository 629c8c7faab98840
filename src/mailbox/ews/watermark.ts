// Watermarks of pull subscriptions: base64url of `w1.<log position>`, opaque to clients.
import type { Sql } from '../../storage/index.ts';
import { changeFloor, lastChange } from '../changes.ts';
import { EwsError } from './codes.ts';

export function writeWatermark(position: number): string {
  return Buffer.from(`w1.${position}`).toString('base64url');
}

export async function readWatermark(sql: Sql, text: string): Promise<number> {
  const [version, seq, ...rest] = Buffer.from(text.trim(), 'base64url').toString('utf8').split('.');
  const position = Number(seq);
  if (version !== 'w1' || rest.length > 0 || !Number.isSafeInteger(position) || position < 0 || position > (await lastChange(sql))) {
    throw new EwsError('ErrorInvalidWatermark', 'the watermark is not one Parley issued');
  }
  if (position < (await changeFloor(sql))) throw new EwsError('ErrorInvalidWatermark', 'the watermark is older than the change log Parley keeps (retention.changeLog); subscribe again');
  return position;
}
