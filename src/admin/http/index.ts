// The admin HTTP API: what the server (and capabilities adding endpoints) may use.
export { ADMIN_PATH, createAdminRoute } from './route.ts';
export type { AdminRoute, AdminRouteOptions } from './route.ts';
export type { AdminEndpoint, AdminEndpointRequest, AdminMethod } from './endpoints.ts';
export { ADMIN_API_ERROR_STATUS, AdminApiError, makeProblem, problemOf, readProblem } from './problem.ts';
export { createTokenCheck } from './auth.ts';
export type { AdminApiErrorCode, Problem } from './problem.ts';
export { DEFAULT_MAX_BODY_BYTES } from './body.ts';
export { bindJsonParameters, toWireParameters } from './validate.ts';
