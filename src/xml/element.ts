/** One element of a parsed document. Names are namespace-resolved: compare `ns` + `name`, never prefixes. */
export interface XmlElement {
  /** local name */
  name: string;
  /** namespace URI, or '' when the element is in no namespace */
  ns: string;
  /** the prefix used in the document ('' for none); informative only */
  prefix: string;
  /** unprefixed attributes by local name; namespaced ones as `{nsURI}local`; xmlns declarations are left out */
  attrs: Map<string, string>;
  children: XmlElement[];
  /** the concatenated direct text content (text and CDATA), not that of descendants */
  text: string;
}

/** The first child element with this namespace and local name. */
export function childElement(el: XmlElement, ns: string, name: string): XmlElement | undefined {
  return el.children.find((c) => c.ns === ns && c.name === name);
}

/** Every child element with this namespace and local name, in document order. */
export function childElements(el: XmlElement, ns: string, name: string): XmlElement[] {
  return el.children.filter((c) => c.ns === ns && c.name === name);
}

/** The text of the first such child element, or undefined when there is none. */
export function childText(el: XmlElement, ns: string, name: string): string | undefined {
  return childElement(el, ns, name)?.text;
}
