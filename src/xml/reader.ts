// A strict, namespace-aware XML reader on saxes (a streaming, non-validating XML 1.0 parser that
// never loads DTDs or external entities). We refuse any DOCTYPE outright, so no entity can be
// declared: XXE and "billion laughs" are impossible, and only the five predefined entities and
// character references are expanded. Limits are checked as the bytes and elements arrive.

import { SaxesParser } from 'saxes';
import type { SaxesTagNS } from 'saxes';
import type { XmlElement } from './element.ts';
import { XmlError } from './errors.ts';
import { DEFAULT_XML_LIMITS } from './limits.ts';
import type { XmlLimits } from './limits.ts';

const XMLNS_NS = 'http://www.w3.org/2000/xmlns/';

/** Reads one document fed in chunks (e.g. as an HTTP body arrives); `end()` returns its root. */
export class XmlReader {
  readonly #limits: XmlLimits;
  readonly #parser = new SaxesParser({ xmlns: true, position: true });
  readonly #decoder = new TextDecoder('utf-8', { fatal: true });
  readonly #stack: XmlElement[] = [];
  #root: XmlElement | undefined;
  #bytes = 0;
  #elements = 0;
  #failed: XmlError | undefined;

  constructor(limits: XmlLimits = DEFAULT_XML_LIMITS) {
    this.#limits = limits;
    const p = this.#parser;
    p.on('error', (err) => {
      throw new XmlError('XML_MALFORMED', `malformed XML: ${err.message}`, { cause: err });
    });
    p.on('doctype', () => {
      throw new XmlError('XML_DTD_FORBIDDEN', 'a DOCTYPE is not accepted: documents must not declare a DTD or entities');
    });
    p.on('xmldecl', (decl) => {
      if (decl.encoding !== undefined && !/^utf-?8$/i.test(decl.encoding)) {
        throw new XmlError('XML_MALFORMED', `the document declares encoding ${JSON.stringify(decl.encoding)}; only UTF-8 is accepted`);
      }
    });
    p.on('opentag', (tag) => this.#open(tag));
    p.on('closetag', () => {
      this.#stack.pop();
    });
    p.on('text', (text) => this.#text(text));
    p.on('cdata', (text) => this.#text(text));
  }

  /** Feeds the next chunk; throws XmlError as soon as the document breaks a rule or a limit. */
  write(chunk: string | Uint8Array): void {
    this.#guard(() => {
      const size = typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.byteLength;
      this.#bytes += size;
      if (this.#bytes > this.#limits.maxBytes) {
        throw new XmlError('XML_TOO_LARGE', `the document exceeds the limit of ${this.#limits.maxBytes} bytes`);
      }
      const text = typeof chunk === 'string' ? chunk : this.#decode(chunk, true);
      if (text !== '') this.#parser.write(text);
    });
  }

  /** Ends the document and returns its root element. */
  end(): XmlElement {
    return this.#guard(() => {
      const rest = this.#decode(new Uint8Array(0), false);
      if (rest !== '') this.#parser.write(rest);
      this.#parser.close();
      if (this.#root === undefined) throw new XmlError('XML_MALFORMED', 'malformed XML: the document has no root element');
      return this.#root;
    });
  }

  #guard<T>(fn: () => T): T {
    if (this.#failed !== undefined) throw this.#failed;
    try {
      return fn();
    } catch (error) {
      this.#failed = error instanceof XmlError ? error : new XmlError('XML_MALFORMED', `malformed XML: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
      throw this.#failed;
    }
  }

  #decode(bytes: Uint8Array, stream: boolean): string {
    try {
      return this.#decoder.decode(bytes, { stream });
    } catch (cause) {
      throw new XmlError('XML_MALFORMED', 'malformed XML: the bytes are not valid UTF-8', { cause });
    }
  }

  #open(tag: SaxesTagNS): void {
    this.#elements += 1;
    if (this.#elements > this.#limits.maxElements) {
      throw new XmlError('XML_TOO_MANY_ELEMENTS', `the document has more than ${this.#limits.maxElements} elements`);
    }
    if (this.#stack.length + 1 > this.#limits.maxDepth) {
      throw new XmlError('XML_TOO_DEEP', `elements are nested deeper than ${this.#limits.maxDepth} levels`);
    }
    const attrs = new Map<string, string>();
    for (const a of Object.values(tag.attributes)) {
      if (a.uri === XMLNS_NS || a.name === 'xmlns') continue;
      attrs.set(a.uri === '' ? a.local : `{${a.uri}}${a.local}`, a.value);
    }
    const el: XmlElement = { name: tag.local, ns: tag.uri, prefix: tag.prefix, attrs, children: [], text: '' };
    const parent = this.#stack.at(-1);
    if (parent === undefined) this.#root = el;
    else parent.children.push(el);
    this.#stack.push(el); // saxes emits closetag for a self-closing tag too
  }

  #text(text: string): void {
    const current = this.#stack.at(-1);
    if (current !== undefined) current.text += text;
  }
}

/** Parses a whole document and returns its root; throws XmlError. */
export function parseXml(input: string | Uint8Array, limits: XmlLimits = DEFAULT_XML_LIMITS): XmlElement {
  const reader = new XmlReader(limits);
  reader.write(input);
  return reader.end();
}
