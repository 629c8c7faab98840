import { ParleyError } from '../errors.ts';

/** Every code an XmlError may carry. */
export type XmlErrorCode =
  /** not well-formed XML 1.0 (syntax, undefined entity, unbound prefix, bad UTF-8, several roots…) */
  | 'XML_MALFORMED'
  /** the document has a DOCTYPE: we never process DTDs (no XXE, no entity expansion) */
  | 'XML_DTD_FORBIDDEN'
  /** more bytes than XmlLimits.maxBytes */
  | 'XML_TOO_LARGE'
  /** elements nested deeper than XmlLimits.maxDepth */
  | 'XML_TOO_DEEP'
  /** more elements than XmlLimits.maxElements */
  | 'XML_TOO_MANY_ELEMENTS';

export class XmlError extends ParleyError {
  declare readonly code: XmlErrorCode;

  constructor(code: XmlErrorCode, message: string, options?: ErrorOptions) {
    super(code, message, options);
  }
}
