/**
 * portalloc: free network ports, fast, in bulk, and without races.
 */
export { allocate, allocateAsync, backend, isFree, reserve, reserveAsync, type Reservation } from './allocate';
export type { AllocateOptions, CheckOptions, Protocol, ReserveOptions } from './options';
export type { PortallocError } from './errors';
export { inheritedSockets, listenInherited, spawnWithSockets, type InheritedSocket, type SpawnWithSocketsOptions } from './handoff';
