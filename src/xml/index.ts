// The safe XML layer: parse with limits and no DTDs; build output with the escapers.
export type { XmlElement } from './element.ts';
export { childElement, childElements, childText } from './element.ts';
export type { XmlErrorCode } from './errors.ts';
export { XmlError } from './errors.ts';
export type { XmlLimits } from './limits.ts';
export { DEFAULT_XML_LIMITS } from './limits.ts';
export { XmlReader, parseXml } from './reader.ts';
export { escapeXmlAttr, escapeXmlText, stripIllegalXmlChars } from './escape.ts';
