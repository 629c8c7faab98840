// The namespaces of EWS (SOAP 1.1). Responses always use the prefixes s:, m:, t:.
export const SOAP_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
export const M_NS = 'http://schemas.microsoft.com/exchange/services/2006/messages';
export const T_NS = 'http://schemas.microsoft.com/exchange/services/2006/types';
export const E_NS = 'http://schemas.microsoft.com/exchange/services/2006/errors';

/** RequestServerVersion values we accept (EWS reference, RequestServerVersion, Version attribute). */
export const ACCEPTED_VERSIONS = ['Exchange2007_SP1', 'Exchange2010', 'Exchange2010_SP1', 'Exchange2010_SP2', 'Exchange2013', 'Exchange2013_SP1', 'Exchange2016'] as const;
export type EwsVersion = (typeof ACCEPTED_VERSIONS)[number];
