/**
 * portalloc: free network ports, fast, in bulk, and without races.
 */
export { allocate, allocateAsync, backend, isFree, reserve, reserveAsync, type Reservation } from './allocate';
export type { AllocateOptions, CheckOptions, Protocol, ReserveOptions } from './options';
export type { PortallocError } from './errors';
// Drop-in compatibility: get-port 7.x is the default export (see docs/compat.md).
export { getPort, portNumbers, clearLockedPorts, type GetPortOptions, type Options } from './compat/get-port';
export { getPort as default } from './compat/get-port';
export { waitForPort, waitUntilFree, type WaitOptions } from './wait';
export { inheritedSockets, listenInherited, spawnWithSockets, type InheritedSocket, type SpawnWithSocketsOptions } from './handoff';
export { namedPort, type NamedPortOptions } from './named';
