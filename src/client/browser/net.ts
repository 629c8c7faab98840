// node:net in a browser bundle: only the address tests src/sip's URI grammar uses. Answers as
// Node's do for the text a SIP URI host holds (no brackets; a zone index after % accepted).

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;
const HEX4 = /^[0-9A-Fa-f]{1,4}$/;

export function isIPv4(input: string): boolean {
  return IPV4.test(input);
}

/** RFC 4291 §2.2 text forms: eight groups, one "::" for a run of zeros, an IPv4 tail in the last 32 bits. */
export function isIPv6(input: string): boolean {
  const percent = input.indexOf('%');
  const address = percent < 0 ? input : input.slice(0, percent);
  if (percent >= 0 && percent === input.length - 1) return false;
  const halves = address.split('::');
  if (halves.length > 2) return false;
  const groupsOf = (part: string): string[] => (part === '' ? [] : part.split(':'));
  const groups = halves.flatMap(groupsOf);
  let count = groups.length;
  const last = groups.at(-1);
  if (last !== undefined && last.includes('.')) {
    // only as the very end of the address ("1.2.3.4::" is not an address)
    if (!isIPv4(last) || halves.at(-1) === '') return false;
    groups.pop();
    count += 1; // the IPv4 tail fills two groups
  }
  if (!groups.every((g) => HEX4.test(g))) return false;
  return halves.length === 2 ? count <= 7 : count === 8;
}

export function isIP(input: string): 0 | 4 | 6 {
  return isIPv4(input) ? 4 : isIPv6(input) ? 6 : 0;
}
