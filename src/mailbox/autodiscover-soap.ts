// Autodiscover, SOAP flavour ([MS-OXWSADISC]; EWS reference "GetUserSettings operation (SOAP)"):
// POST /autodiscover/autodiscover.svc with GetUserSettingsRequestMessage; answers the settings
// Parley knows (the EWS URLs, the display name, the SMTP address) for the caller's own address;
// another address is InvalidUser, an unknown setting a UserSettingError.
import type { XmlElement } from '../xml/index.ts';
import { childElement, childElements, childText, escapeXmlText } from '../xml/index.ts';
import { SOAP_NS } from './ews/names.ts';

const AD_NS = 'http://schemas.microsoft.com/exchange/2010/Autodiscover';
const WSA_NS = 'http://www.w3.org/2005/08/addressing';
const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';

export interface SoapAutodiscoverContext {
  user: string;
  displayName: string;
  ewsUrl: string;
}

/** The response envelope; `undefined` when the body is not a GetUserSettings request (the caller answers 400). */
export function answerGetUserSettings(root: XmlElement, ctx: SoapAutodiscoverContext): string | undefined {
  const body = root.ns === SOAP_NS && root.name === 'Envelope' ? childElement(root, SOAP_NS, 'Body') : undefined;
  const request = body && childElement(childElement(body, AD_NS, 'GetUserSettingsRequestMessage') ?? body, AD_NS, 'Request');
  if (request === undefined) return undefined;
  const users = childElements(childElement(request, AD_NS, 'Users') ?? request, AD_NS, 'User').map((u) => childText(u, AD_NS, 'Mailbox')?.trim().toLowerCase() ?? '');
  const settings = childElements(childElement(request, AD_NS, 'RequestedSettings') ?? request, AD_NS, 'Setting').map((s) => s.text.trim());
  const known: Record<string, string> = {
    UserDisplayName: ctx.displayName,
    AutoDiscoverSMTPAddress: ctx.user,
    InternalEwsUrl: ctx.ewsUrl,
    ExternalEwsUrl: ctx.ewsUrl,
    EwsSupportedSchemas: 'Exchange2007, Exchange2007_SP1, Exchange2010, Exchange2010_SP1, Exchange2010_SP2, Exchange2013, Exchange2013_SP1, Exchange2016',
  };
  const responses = users.map((u) => {
    if (u.replace(/^(smtp|sip):/, '') !== ctx.user) {
      return `<UserResponse><ErrorCode>InvalidUser</ErrorCode><ErrorMessage>Invalid user: '${escapeXmlText(u)}'</ErrorMessage><RedirectTarget i:nil="true"/><UserSettingErrors/><UserSettings/></UserResponse>`;
    }
    const values = settings.filter((s) => Object.hasOwn(known, s));
    const errors = settings.filter((s) => !Object.hasOwn(known, s));
    return (
      `<UserResponse><ErrorCode>NoError</ErrorCode><ErrorMessage>No error.</ErrorMessage><RedirectTarget i:nil="true"/>` +
      `<UserSettingErrors>${errors.map((s) => `<UserSettingError><ErrorCode>InvalidSetting</ErrorCode><ErrorMessage>Parley does not provide ${escapeXmlText(s)}</ErrorMessage><SettingName>${escapeXmlText(s)}</SettingName></UserSettingError>`).join('')}</UserSettingErrors>` +
      `<UserSettings>${values.map((s) => `<UserSetting i:type="StringSetting"><Name>${s}</Name><Value>${escapeXmlText(known[s] ?? '')}</Value></UserSetting>`).join('')}</UserSettings></UserResponse>`
    );
  });
  return (
    `<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="${SOAP_NS}" xmlns:a="${WSA_NS}"><s:Header>` +
    `<a:Action s:mustUnderstand="1">${AD_NS}/Autodiscover/GetUserSettingsResponse</a:Action>` +
    `<h:ServerVersionInfo xmlns:h="${AD_NS}" xmlns:i="${XSI_NS}"><h:MajorVersion>15</h:MajorVersion><h:MinorVersion>1</h:MinorVersion><h:MajorBuildNumber>2507</h:MajorBuildNumber><h:MinorBuildNumber>6</h:MinorBuildNumber><h:Version>Exchange2015</h:Version></h:ServerVersionInfo>` +
    `</s:Header><s:Body><GetUserSettingsResponseMessage xmlns="${AD_NS}"><Response xmlns:i="${XSI_NS}"><ErrorCode>NoError</ErrorCode><ErrorMessage/>` +
    `<UserResponses>${responses.join('')}</UserResponses></Response></GetUserSettingsResponseMessage></s:Body></s:Envelope>`
  );
}
