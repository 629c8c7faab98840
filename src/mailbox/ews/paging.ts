// IndexedPageItemView / IndexedPageFolderView (EWS reference): MaxEntriesReturned, Offset, BasePoint.
import type { XmlElement } from '../../xml/index.ts';
import { EwsError } from './codes.ts';
import { attr } from './write.ts';

export interface IndexedView {
  max: number;
  offset: number;
  basePoint: 'Beginning' | 'End';
}

/** Parley's ceiling on one page, whatever the client asks (Exchange's default throttling is 1000). */
export const MAX_PAGE = 1000;

export function readIndexedView(view: XmlElement | undefined): IndexedView {
  if (view === undefined) return { max: MAX_PAGE, offset: 0, basePoint: 'Beginning' };
  const max = integer(view.attrs.get('MaxEntriesReturned'), MAX_PAGE, 1, 'MaxEntriesReturned');
  const offset = integer(view.attrs.get('Offset'), 0, 0, 'Offset');
  const basePoint = view.attrs.get('BasePoint') ?? 'Beginning';
  if (basePoint !== 'Beginning' && basePoint !== 'End') throw new EwsError('ErrorSchemaValidation', `BasePoint must be Beginning or End, not ${JSON.stringify(basePoint)}`);
  return { max: Math.min(max, MAX_PAGE), offset, basePoint };
}

function integer(text: string | undefined, fallback: number, min: number, name: string): number {
  if (text === undefined) return fallback;
  if (!/^\d{1,9}$/.test(text.trim()) || Number(text) < min) throw new EwsError('ErrorSchemaValidation', `${name} must be an integer of at least ${min}, not ${JSON.stringify(text)}`);
  return Number(text);
}

/** Which slice of `total` entries the view selects, counted from the beginning. */
export function sliceOf(view: IndexedView, total: number): { start: number; count: number } {
  if (view.basePoint === 'Beginning') {
    const start = Math.min(view.offset, total);
    return { start, count: Math.max(0, Math.min(view.max, total - start)) };
  }
  const end = Math.max(0, total - view.offset);
  const start = Math.max(0, end - view.max);
  return { start, count: end - start };
}

/** The RootFolder attributes: where the next page starts, the total, whether this page reaches the end. */
export function rootFolderAttrs(view: IndexedView, total: number, start: number, count: number): string {
  const next = view.basePoint === 'Beginning' ? start + count : view.offset + count;
  const last = view.basePoint === 'Beginning' ? start + count >= total : start === 0;
  return `${attr('IndexedPagingOffset', next)}${attr('TotalItemsInView', total)}${attr('IncludesLastItemInRange', last)}`;
}
