// The SOAP 1.1 envelope of EWS: what a request must look like, and the response and fault we write.
// EWS reference: "EWS XML elements", RequestServerVersion, ServerVersionInfo; SOAP 1.1 §4.4 (Fault).

import type { XmlElement } from '../../xml/index.ts';
import { childElement, childElements, escapeXmlText } from '../../xml/index.ts';
import { EwsError } from './codes.ts';
import type { EwsResponseCode } from './codes.ts';
import { ACCEPTED_VERSIONS, E_NS, M_NS, SOAP_NS, T_NS } from './names.ts';
import type { EwsVersion } from './names.ts';
import { attr } from './write.ts';

export interface EwsRequest {
  version: EwsVersion;
  /** the one element of the Body: the operation, in the messages namespace */
  operation: XmlElement;
  /** the ExchangeImpersonation header, when present */
  impersonation: XmlElement | undefined;
}

/** Checks the envelope; throws EwsError (answered with a SOAP Fault) when it is not a valid EWS request. */
export function readEnvelope(root: XmlElement): EwsRequest {
  if (root.ns !== SOAP_NS || root.name !== 'Envelope') {
    throw new EwsError('ErrorSchemaValidation', `the request is not a SOAP 1.1 envelope (found {${root.ns}}${root.name}; expected {${SOAP_NS}}Envelope)`);
  }
  const unknown = root.children.find((c) => c.ns !== SOAP_NS || (c.name !== 'Header' && c.name !== 'Body'));
  if (unknown) throw new EwsError('ErrorSchemaValidation', `unexpected element {${unknown.ns}}${unknown.name} in the envelope`);
  const bodies = childElements(root, SOAP_NS, 'Body');
  const body = bodies[0];
  if (body === undefined || bodies.length > 1) throw new EwsError('ErrorSchemaValidation', 'the envelope must have exactly one Body');
  const operation = body.children[0];
  if (operation === undefined || body.children.length > 1) throw new EwsError('ErrorSchemaValidation', 'the Body must hold exactly one operation element');
  if (operation.ns !== M_NS) throw new EwsError('ErrorSchemaValidation', `the operation {${operation.ns}}${operation.name} is not in the EWS messages namespace ${M_NS}`);

  const header = childElement(root, SOAP_NS, 'Header');
  let version: EwsVersion = 'Exchange2016';
  const requested = header && childElement(header, T_NS, 'RequestServerVersion');
  if (requested) {
    const value = requested.attrs.get('Version') ?? '';
    const accepted = ACCEPTED_VERSIONS.find((v) => v === value);
    if (accepted === undefined) throw new EwsError('ErrorInvalidServerVersion', `RequestServerVersion ${JSON.stringify(value)} is not supported; use one of ${ACCEPTED_VERSIONS.join(', ')}`);
    version = accepted;
  }
  return { version, operation, impersonation: header && childElement(header, T_NS, 'ExchangeImpersonation') };
}

/** ServerVersionInfo (Exchange 2016 CU build numbers); Version echoes the schema version the client asked for. */
export function serverVersionInfo(version: EwsVersion): string {
  return `<h:ServerVersionInfo xmlns:h="${T_NS}"${attr('MajorVersion', 15)}${attr('MinorVersion', 1)}${attr('MajorBuildNumber', 2507)}${attr('MinorBuildNumber', 6)}${attr('Version', version)}/>`;
}

export function responseEnvelope(version: EwsVersion, body: string): string {
  // m: and t: are declared on the operation's response element (the first element of `body`)
  const declared = body.replace(/^<([A-Za-z:]+)/, `<$1 xmlns:m="${M_NS}" xmlns:t="${T_NS}"`);
  return `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP_NS}"><s:Header>${serverVersionInfo(version)}</s:Header><s:Body>${declared}</s:Body></s:Envelope>`;
}

/** SOAP 1.1 Fault as Exchange writes it: faultcode in the types namespace, ResponseCode in detail. */
export function faultEnvelope(version: EwsVersion, code: EwsResponseCode, message: string): string {
  const faultcode = code === 'ErrorSchemaValidation' || code === 'ErrorInvalidServerVersion' ? `a:${code}` : 's:Client';
  return (
    `<?xml version="1.0" encoding="utf-8"?>` +
    `<s:Envelope xmlns:s="${SOAP_NS}"><s:Header>${serverVersionInfo(version)}</s:Header><s:Body><s:Fault>` +
    `<faultcode xmlns:a="${T_NS}">${faultcode}</faultcode><faultstring xml:lang="en-US">${escapeXmlText(message)}</faultstring>` +
    `<detail><e:ResponseCode xmlns:e="${E_NS}">${code}</e:ResponseCode><e:Message xmlns:e="${E_NS}">${escapeXmlText(message)}</e:Message></detail>` +
    `</s:Fault></s:Body></s:Envelope>`
  );
}
