// The registrar: what other capabilities may use.
export type { Binding, BindingChange, FlowRef, LocationService } from './location.ts';
export { MemoryLocationService } from './location.ts';
export { DEFAULT_REGISTRAR_SETTINGS, planRegistration, type RegistrarSettings } from './plan.ts';
export { registerHandler } from './handler.ts';
export { createRegistrationEvents, type RegistrationEvents } from './events.ts';
