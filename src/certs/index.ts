// Certificates of the TLS listeners: PEM pairs checked (pair.ts), kept and reloaded (keeper.ts).
export { type CertificatePair, CertificateError, checkPair, PAIR_CODES, type PairFiles, readPair } from './pair.ts';
export { type CertificateStats, CertificateKeeper, type SecureContextTarget } from './keeper.ts';
export { ACME_CHALLENGE_PREFIX, AcmeCertificates, AcmeChallenges, AcmeError, type AcmeFiles, type AcmeSettings } from './acme.ts';
