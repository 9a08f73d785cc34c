/**
 * Errors a caller can branch on by `code`, never by message or `instanceof`.
 */
import fs from 'node:fs';
import { getSystemErrorMap, inspect } from 'node:util';

/** An error with the `code` (and, for system errors, `errno` and `syscall`) that callers branch on. */
export interface PortallocError extends Error {
  code: string;
  errno?: number;
  syscall?: string;
  address?: string;
  port?: number;
}

/** Shows a user's value in an error message: strings quoted, objects inspected briefly. */
export function show(value: unknown): string {
  // compact: true keeps it on one line (the default groups arrays of more than 6 items into rows).
  return inspect(value, { depth: 1, breakLength: Infinity, compact: true, maxArrayLength: 8, maxStringLength: 60 });
}

/** A TypeError with Node's code for a wrong type, its message naming the option and the value. */
export function typeError(name: string, expected: string, value: unknown): TypeError {
  const error = new TypeError(`portalloc: ${name} must be ${expected}; got ${show(value)}`) as TypeError & { code: string };
  error.code = 'ERR_INVALID_ARG_TYPE';
  return error;
}

/** A RangeError with Node's code for a value of the right type but out of range. */
export function rangeError(name: string, expected: string, value: unknown): RangeError {
  const error = new RangeError(`portalloc: ${name} must be ${expected}; got ${show(value)}`) as RangeError & { code: string };
  error.code = 'ERR_OUT_OF_RANGE';
  return error;
}

/**
 * A system error shaped like Node's own: `code` is the errno name, `errno` is
 * negative as in Node, `syscall` the failed call.
 */
export function systemError(errno: number, syscall: string, details: { address?: string; port?: number; hint?: string } = {}): PortallocError {
  const negative = -Math.abs(errno);
  const [code, description] = getSystemErrorMap().get(negative) ?? [`E${Math.abs(errno)}`, 'unknown error'];
  const where = details.port ? ` ${details.address ?? ''}${details.address ? ':' : 'port '}${details.port}` : details.address ? ` ${details.address}` : '';
  const hint = details.hint ? ` (${details.hint})` : '';
  const error = new Error(`portalloc: ${syscall} ${code}${where}: ${description}${hint}`) as PortallocError;
  error.code = code;
  error.errno = negative;
  error.syscall = syscall;
  if (details.address !== undefined) error.address = details.address;
  if (details.port) error.port = details.port;
  return error;
}

/** Fewer free ports than asked for where the call looked. */
export function exhaustedError(asked: number, found: number, where: string): PortallocError {
  const error = new Error(`portalloc: asked for ${asked} free port${asked === 1 ? '' : 's'} ${where}, found ${found}`) as PortallocError & { asked: number; found: number };
  error.code = 'ERR_PORTS_EXHAUSTED';
  error.asked = asked;
  error.found = found;
  return error;
}

/** A mode the running backend cannot provide. */
export function unsupportedError(what: string): PortallocError {
  const error = new Error(`portalloc: ${what}`) as PortallocError;
  error.code = 'ERR_PORTALLOC_UNSUPPORTED';
  return error;
}

/**
 * Gives an error with another library's exact message (the compat entry
 * points) the `code` that callers branch on; the originals set none.
 */
export function coded<E extends Error>(error: E, code: string): E & { code: string } {
  return Object.assign(error, { code });
}

let unprivilegedStart: number | undefined;

/** net.ipv4.ip_unprivileged_port_start: the lowest port a process without CAP_NET_BIND_SERVICE may bind (1024). */
function firstUnprivilegedPort(): number {
  if (unprivilegedStart !== undefined) return unprivilegedStart;
  unprivilegedStart = 1024;
  try {
    const value = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8').trim());
    if (Number.isInteger(value) && value >= 0 && value <= 65536) unprivilegedStart = value;
  } catch {
    // not Linux, or no /proc: the classic limit
  }
  return unprivilegedStart;
}

/**
 * Why binds from `lowestPort` up were refused, in words: privileged ports, or
 * a policy that forbids bind() (what is left when privileges do not explain it).
 */
export function deniedReason(lowestPort: number): string {
  const start = firstUnprivilegedPort();
  if (lowestPort < start && process.getuid?.() !== 0) return `ports below ${start} need root or CAP_NET_BIND_SERVICE`;
  return 'a sandbox or security policy (seccomp, landlock, a container profile) forbids bind()';
}

/**
 * Nothing found because binds were refused (EACCES, EPERM): privileges or a
 * sandbox, not busy ports. `errno` is the refusal's (negative, as Node's);
 * `refused` how many ports were refused; `lowestPort` the lowest port looked
 * at (which says whether privileges explain it).
 */
export function deniedError(asked: number, refused: number, errno: number, where: string, lowestPort: number): PortallocError {
  const negative = -Math.abs(errno || 13);
  const [name] = getSystemErrorMap().get(negative) ?? ['EACCES'];
  const error = new Error(
    `portalloc: asked for ${asked} free port${asked === 1 ? '' : 's'} ${where}, found 0: the kernel refused ${refused} bind${refused === 1 ? '' : 's'} ` +
      `with ${name}: ${deniedReason(lowestPort)}`,
  ) as PortallocError & { asked: number; found: number; refused: number };
  error.code = 'ERR_PORTS_DENIED';
  error.errno = negative;
  error.syscall = 'bind';
  error.asked = asked;
  error.found = 0;
  error.refused = refused;
  return error;
}

/** A TIME_WAIT reservation the kernel did not keep (net.ipv4.tcp_max_tw_buckets reached). */
export function timeWaitRefusedError(port: number): PortallocError {
  const error = new Error(
    `portalloc: the kernel did not keep port ${port} in TIME_WAIT (net.ipv4.tcp_max_tw_buckets reached?); nothing was reserved`,
  ) as PortallocError;
  error.code = 'ERR_TIMEWAIT_REFUSED';
  error.port = port;
  return error;
}
