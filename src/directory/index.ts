// What other capabilities may use of the directory.
export type { SipAddress } from './address.ts';
export { MAX_USER_LENGTH, parseAddress } from './address.ts';
export type { DirectoryErrorCode } from './errors.ts';
export { DIRECTORY_ERROR_STATUS, DirectoryError } from './errors.ts';
export type { NewUser, UserLookup, UserRecord, UserSummary } from './users.ts';
export { DIRECTORY_MIGRATIONS, SCRYPT_PARAMS, addUser, cachedUserLookup, findUser, setDisplayName, listUsers, passwordStamp, removeUser, searchUsers, setPassword, verifyPassword } from './users.ts';
export type { Site } from './sites.ts';
export { countSiteUsers, createSite, findSite, listSites, parseSiteIdentity, removeSite, requireSite, setUserSite, userSite } from './sites.ts';
export type { DirectoryRouteOptions } from './http.ts';
export { DIRECTORY_PATH, MAX_PAGE_SIZE, createDirectoryRoute } from './http.ts';
