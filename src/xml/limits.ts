// The limits every XML document we read is held to, enforced while the bytes arrive (see reader.ts),
// so that an oversized or deeply nested request is refused before it is held in memory whole.

export interface XmlLimits {
  /** bytes of the encoded document */
  readonly maxBytes: number;
  /** nesting depth of elements; the root is depth 1 */
  readonly maxDepth: number;
  /** elements in the whole document */
  readonly maxElements: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = Object.freeze({
  maxBytes: 1024 * 1024,
  maxDepth: 64,
  maxElements: 50_000,
});
