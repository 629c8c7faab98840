// The service description served at GET /EWS/Exchange.asmx, /EWS/Exchange.asmx?wsdl and
// /EWS/Services.wsdl (Exchange answers an authenticated GET of the EWS URL with its Services.wsdl).
//
// WSDL 1.1, SOAP 1.1 document/literal, with the names Exchange's Services.wsdl uses
// (ExchangeServicePortType, ExchangeServiceBinding, ExchangeServices/ExchangeServicePort, SOAPAction
// http://schemas.microsoft.com/exchange/services/2006/messages/NAME), listing only the operations
// Parley serves. Exchange's WSDL imports messages.xsd and types.xsd, Microsoft's schemas, which
// Parley does not serve; instead wsdl:types declares each request and response element in the
// messages namespace with open content, so the document is complete and valid on its own and a
// client that reads it learns which operations exist and where, not the full EWS types.
import { escapeXmlAttr } from '../../xml/index.ts';
import { M_NS, SOAP_NS, T_NS } from './names.ts';

const WSDL_NS = 'http://schemas.xmlsoap.org/wsdl/';
const WSDL_SOAP_NS = 'http://schemas.xmlsoap.org/wsdl/soap/';
const XS_NS = 'http://www.w3.org/2001/XMLSchema';

/** Services.wsdl for `operations` (names as in the messages namespace), bound to `location` (the EWS URL). */
export function servicesWsdl(operations: readonly string[], location: string): string {
  const open = '<xs:complexType><xs:sequence><xs:any namespace="##any" processContents="lax" minOccurs="0" maxOccurs="unbounded"/></xs:sequence><xs:anyAttribute namespace="##any" processContents="lax"/></xs:complexType>';
  const elements = operations.flatMap((op) => [`<xs:element name="${op}">${open}</xs:element>`, `<xs:element name="${op}Response">${open}</xs:element>`]);
  const messages = operations.flatMap((op) => [
    `<wsdl:message name="${op}SoapIn"><wsdl:part name="request" element="tns:${op}"/></wsdl:message>`,
    `<wsdl:message name="${op}SoapOut"><wsdl:part name="${op}Result" element="tns:${op}Response"/></wsdl:message>`,
  ]);
  const portOps = operations.map((op) => `<wsdl:operation name="${op}"><wsdl:input message="tns:${op}SoapIn"/><wsdl:output message="tns:${op}SoapOut"/></wsdl:operation>`);
  const bindingOps = operations.map(
    (op) => `<wsdl:operation name="${op}"><soap:operation soapAction="${M_NS}/${op}"/><wsdl:input><soap:body use="literal"/></wsdl:input><wsdl:output><soap:body use="literal"/></wsdl:output></wsdl:operation>`,
  );
  return (
    `<?xml version="1.0" encoding="utf-8"?>\n` +
    `<wsdl:definitions xmlns:wsdl="${WSDL_NS}" xmlns:soap="${WSDL_SOAP_NS}" xmlns:xs="${XS_NS}" xmlns:tns="${M_NS}" xmlns:t="${T_NS}" xmlns:s="${SOAP_NS}" targetNamespace="${M_NS}">` +
    `<wsdl:documentation>Parley's Exchange Web Services: the operations this server answers. Element contents follow Microsoft's EWS messages.xsd and types.xsd (not served here).</wsdl:documentation>` +
    `<wsdl:types><xs:schema targetNamespace="${M_NS}" elementFormDefault="qualified">${elements.join('')}</xs:schema></wsdl:types>` +
    messages.join('') +
    `<wsdl:portType name="ExchangeServicePortType">${portOps.join('')}</wsdl:portType>` +
    `<wsdl:binding name="ExchangeServiceBinding" type="tns:ExchangeServicePortType"><soap:binding style="document" transport="http://schemas.xmlsoap.org/soap/http"/>${bindingOps.join('')}</wsdl:binding>` +
    `<wsdl:service name="ExchangeServices"><wsdl:port name="ExchangeServicePort" binding="tns:ExchangeServiceBinding"><soap:address location="${escapeXmlAttr(location)}"/></wsdl:port></wsdl:service>` +
    `</wsdl:definitions>\n`
  );
}
