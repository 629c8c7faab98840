// A certificate and its private key, as PEM files: read, and checked as a TLS server would need them
// (a certificate, valid now, and the key its own). One check for start-up, `parley check-config`
// and every reload, so a pair the server would refuse is refused the same way everywhere.

import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { ParleyError } from '../errors.ts';

/** Where a pair is read from, and the settings that named the files (for messages). */
export interface PairFiles {
  cert: string;
  key: string;
  /** the settings naming the files, e.g. `tls.cert` / `tls.key` */
  certSetting?: string;
  keySetting?: string;
}

export interface CertificatePair {
  /** the PEM text as read: the chain, leaf first */
  readonly cert: Buffer;
  readonly key: Buffer;
  readonly subject: string;
  readonly serialNumber: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
}

/** Stable codes of a refused pair. */
export const PAIR_CODES = {
  UNREADABLE: 'TLS_FILE_UNREADABLE',
  NOT_A_CERTIFICATE: 'TLS_NOT_A_CERTIFICATE',
  KEY_MISMATCH: 'TLS_KEY_MISMATCH',
  NOT_YET_VALID: 'TLS_NOT_YET_VALID',
  EXPIRED: 'TLS_EXPIRED',
} as const;

/** A pair refused; the message names the setting and the file. */
export class CertificateError extends ParleyError {}

/** Reads both files and checks them; throws CertificateError. */
export function readPair(files: PairFiles, now: Date = new Date()): CertificatePair {
  const certSetting = files.certSetting ?? 'certificate';
  const keySetting = files.keySetting ?? 'key';
  return checkPair(readable(files.cert, certSetting), readable(files.key, keySetting), { ...files, certSetting, keySetting }, now);
}

/** Checks a pair already in memory (an ACME order's result); `files` only names it in messages. */
export function checkPair(cert: Buffer, key: Buffer, files: Required<PairFiles>, now: Date = new Date()): CertificatePair {
  let x509;
  try {
    x509 = new X509Certificate(cert);
  } catch (err) {
    throw new CertificateError(PAIR_CODES.NOT_A_CERTIFICATE, `${files.certSetting}: ${files.cert} is not a PEM certificate: ${(err as Error).message}`);
  }
  try {
    // OpenSSL refuses a key that does not belong to the certificate ("key values mismatch")
    createSecureContext({ cert, key });
  } catch (err) {
    throw new CertificateError(PAIR_CODES.KEY_MISMATCH, `${files.keySetting}: ${files.key} is not the private key of the certificate in ${files.certSetting} (${files.cert}): ${(err as Error).message}`);
  }
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (now < notBefore) throw new CertificateError(PAIR_CODES.NOT_YET_VALID, `${files.certSetting}: the certificate in ${files.cert} is valid only from ${notBefore.toISOString()}`);
  if (now > notAfter) throw new CertificateError(PAIR_CODES.EXPIRED, `${files.certSetting}: the certificate in ${files.cert} expired on ${notAfter.toISOString()}`);
  return { cert, key, subject: x509.subject.replace(/\n/g, ', '), serialNumber: x509.serialNumber, notBefore, notAfter };
}

function readable(file: string, setting: string): Buffer {
  try {
    return readFileSync(file);
  } catch (err) {
    throw new CertificateError(PAIR_CODES.UNREADABLE, `${setting}: cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
}
