// RFC 6665 event notification: SUBSCRIBE/NOTIFY for any event package. What others may use.
export { DEFAULT_USER_SWEEP_MS, EventService, type EventServiceOptions } from './service.ts';
export { DEFAULT_SUBSCRIPTION_LIMITS, LiveSubscriptions, type Admission, type SubscriptionLimits } from './limits.ts';
export { REPLACED_RETRY_AFTER } from './subscribe.ts';
export { DEFAULT_SUBSCRIBE_EXPIRY, type Authorization, type DocumentViews, type EventNotifications, type EventPackage, type ExpirySettings } from './package.ts';
export { FANOUT_SLICE, requestTarget, type EventDocument } from './notifier.ts';
export { Subscription, type SubscriptionStateName, type TerminationReason } from './subscriptions.ts';
export { acceptsType, eventPackage, expiresOf } from './headers.ts';
export { ManualTimers, NODE_TIMERS, repeat, type CancelTimer, type Timers } from './timers.ts';
