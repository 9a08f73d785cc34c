/**
 * Option validation: every bad input becomes a TypeError or RangeError that
 * names the option and the value, before any socket is opened.
 */
import fs from 'node:fs';
import net from 'node:net';
import type { BatchRequest, Binding, ProtocolBits } from './binding';
import { rangeError, show, systemError, typeError, type PortallocError } from './errors';

export type Protocol = 'tcp' | 'udp' | 'both';

/** Where and how to look for free ports. */
export interface AllocateOptions {
  /**
   * The address the ports must be free on. Default: every local address, IPv4
   * and IPv6, checked at once by one dual-stack socket. An IP address or a name
   * that resolves to one of this machine's addresses (`'localhost'`).
   */
  readonly host?: string;
  /** `'tcp'` (default), `'udp'`, or `'both'`: free for TCP and UDP alike. */
  readonly protocol?: Protocol;
  /** Inclusive bounds, 1-65535. Default: the kernel picks from its ephemeral range. */
  readonly range?: readonly [from: number, to: number];
  /** Within a range: `'random'` start (default, wrapping) or `'ascending'` (lowest free first). */
  readonly order?: 'random' | 'ascending';
  /** Ports never to return. */
  readonly exclude?: Iterable<number>;
  /**
   * allocate() only. `'timewait'`: leave each port in TIME_WAIT on loopback for
   * 60 s, so bind(0), connect() and non-reuse binds skip it while a
   * SO_REUSEADDR server (Node's net) can listen on it; for handing a number to
   * a process you do not control. TCP and a loopback host only; native only.
   */
  readonly reserve?: 'timewait';
  /**
   * allocate() only. Whether processes that allocate at the same time get
   * disjoint ports, and this process does not hand a port out twice, for at
   * least 20 s (see docs/handoff.md). Default: on; cross-process coordination
   * needs the native backend (`true` on the JS backend throws).
   */
  readonly coordinate?: boolean;
}

/** {@link AllocateOptions}, and whether a SO_REUSEADDR consumer may bind while the hold lasts. */
export interface ReserveOptions extends Omit<AllocateOptions, 'reserve' | 'coordinate'> {
  /**
   * `false` (default): nobody else can bind the ports, a Node server neither.
   * `true`: a consumer that sets SO_REUSEADDR (Node's `net`, Go, Rust std) can
   * bind and listen while the hold lasts; everyone else still gets EADDRINUSE.
   */
  readonly shared?: boolean;
}

/** What {@link isFree} checks. */
export interface CheckOptions {
  /** Default: every local address, IPv4 and IPv6. */
  readonly host?: string;
  /** `'tcp'` (default), `'udp'`, or `'both'`. */
  readonly protocol?: Protocol;
}

const PROTOCOLS: Record<Protocol, ProtocolBits> = { tcp: 1, udp: 2, both: 3 };
const ALLOCATE_KEYS = new Set(['host', 'protocol', 'range', 'order', 'exclude']);
const RESERVE_KEYS = new Set([...ALLOCATE_KEYS, 'shared']);
const PLAIN_KEYS = new Set([...ALLOCATE_KEYS, 'reserve', 'coordinate']);
const CHECK_KEYS = new Set(['host', 'protocol']);

/** A batch ready for the backend, and how to describe where it looked. */
export interface Plan {
  request: BatchRequest;
}

/** Where a batch looked, for its ERR_PORTS_EXHAUSTED message. */
export function whereLooked({ rangeFrom, rangeTo, ephemeralLow, ephemeralHigh }: BatchRequest): string {
  return rangeFrom !== 0 ? `in range ${rangeFrom}-${rangeTo}` : `in the kernel's ephemeral range ${ephemeralLow}-${ephemeralHigh}`;
}

export function checkCount(count: unknown): number {
  if (typeof count !== 'number') throw typeError('count', 'a positive safe integer', count);
  if (!Number.isSafeInteger(count) || count < 1) throw rangeError('count', 'a positive safe integer', count);
  if (count > 65535) throw rangeError('count', 'at most 65535 (the ports of one protocol)', count);
  return count;
}

/** An integer port within [min, 65535]. */
export function checkPort(name: string, port: unknown, min = 0): number {
  if (typeof port !== 'number') throw typeError(name, `an integer from ${min} to 65535`, port);
  if (!Number.isInteger(port) || port < min || port > 65535) throw rangeError(name, `an integer from ${min} to 65535`, port);
  return port;
}

/** The options object, after checking it is one and names only `allowed` keys. */
export function checkKeys(options: unknown, allowed: Set<string>): Record<string, unknown> {
  if (options === undefined || options === null) return {};
  if (typeof options !== 'object' || Array.isArray(options)) throw typeError('options', 'an object', options);
  for (const key of Object.keys(options)) {
    if (!allowed.has(key)) {
      const error = new TypeError(`portalloc: unknown option ${show(key)}; known options are ${[...allowed].join(', ')}`) as TypeError & { code: string };
      error.code = 'ERR_INVALID_ARG_VALUE';
      throw error;
    }
  }
  return options as Record<string, unknown>;
}

export function checkProtocol(protocol: unknown): ProtocolBits {
  if (protocol === undefined) return 1;
  if (typeof protocol !== 'string') throw typeError('options.protocol', "'tcp', 'udp' or 'both'", protocol);
  const bits = PROTOCOLS[protocol as Protocol];
  if (bits === undefined || !Object.hasOwn(PROTOCOLS, protocol)) {
    const error = new RangeError(`portalloc: options.protocol must be 'tcp', 'udp' or 'both'; got ${show(protocol)}`) as RangeError & { code: string };
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
  return bits;
}

function checkRange(range: unknown): [number, number] | undefined {
  if (range === undefined) return undefined;
  const expected = '[from, to] with 1 <= from <= to <= 65535';
  if (!Array.isArray(range) || range.length !== 2) throw typeError('options.range', expected, range);
  const [from, to] = range as unknown[];
  if (typeof from !== 'number' || typeof to !== 'number') throw typeError('options.range', expected, range);
  if (!Number.isInteger(from) || !Number.isInteger(to) || from < 1 || to > 65535 || from > to) {
    throw rangeError('options.range', expected, range);
  }
  return [from, to];
}

function checkOrder(order: unknown): 'random' | 'ascending' {
  if (order === undefined || order === 'random' || order === 'ascending') return order ?? 'random';
  if (typeof order !== 'string') throw typeError('options.order', "'random' or 'ascending'", order);
  const error = new RangeError(`portalloc: options.order must be 'random' or 'ascending'; got ${show(order)}`) as RangeError & { code: string };
  error.code = 'ERR_INVALID_ARG_VALUE';
  throw error;
}

/** The excluded ports as a bitmap of 65,536 bits, or undefined for none. */
export function checkExclude(exclude: unknown): Uint8Array | undefined {
  if (exclude === undefined) return undefined;
  if (exclude === null || typeof (exclude as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof exclude === 'string') {
    throw typeError('options.exclude', 'an iterable of ports', exclude);
  }
  const bitmap = new Uint8Array(65536 / 8);
  let any = false;
  for (const port of exclude as Iterable<unknown>) {
    checkPort('each port in options.exclude', port);
    bitmap[(port as number) >> 3]! |= 1 << ((port as number) & 7);
    any = true;
  }
  return any ? bitmap : undefined;
}

/**
 * An IP literal for the backend: '' for the default (every address), the
 * address itself, or the first address a name resolves to.
 */
/** options.host, when given: a non-empty string. */
export function checkHost(host: unknown): asserts host is string | undefined {
  if (host === undefined) return;
  if (typeof host !== 'string') throw typeError('options.host', 'a string (an IP address or a host name)', host);
  if (host === '') throw rangeError('options.host', 'an IP address or a host name', host);
}

export function resolveHost(host: unknown, binding: Binding): string {
  checkHost(host);
  if (host === undefined) return '';
  if (net.isIP(host) !== 0) return host;
  const found = binding.lookup(host);
  if ('addresses' in found && found.addresses.length > 0) return found.addresses[0]!;
  // getaddrinfo failed for a system reason (EMFILE, say): not a name that does not resolve.
  if ('errno' in found && found.errno) throw systemError(found.errno, 'getaddrinfo', { address: host });
  const error = new Error(`portalloc: options.host ${show(host)} does not resolve (getaddrinfo ENOTFOUND)`) as PortallocError & { hostname: string };
  error.code = 'ENOTFOUND';
  error.syscall = 'getaddrinfo';
  error.hostname = host;
  throw error;
}

let ephemeral: [number, number] | undefined;

/** ip_local_port_range, where bind(0) draws ports from; read once. */
export function ephemeralRange(): [number, number] {
  if (ephemeral) return ephemeral;
  ephemeral = [32768, 60999];
  try {
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (Number.isInteger(low) && Number.isInteger(high) && low! >= 1 && low! <= high! && high! <= 65535) ephemeral = [low!, high!];
  } catch {
    // Not Linux, or /proc is not mounted: the kernel's usual default serves.
  }
  return ephemeral;
}

/** Validates allocate/reserve arguments and turns them into one batch. */
export function plan(count: unknown, options: unknown, binding: Binding, hold: boolean): Plan {
  checkCount(count);
  const given = checkKeys(options, hold ? RESERVE_KEYS : PLAIN_KEYS);
  const protocol = checkProtocol(given.protocol);
  const range = checkRange(given.range);
  const order = checkOrder(given.order);
  const exclude = checkExclude(given.exclude);
  if (given.shared !== undefined && typeof given.shared !== 'boolean') throw typeError('options.shared', 'a boolean', given.shared);
  const host = resolveHost(given.host, binding);
  const [low, high] = ephemeralRange();
  const [from, to] = range ?? [0, 0];
  const start = range === undefined ? 0 : order === 'ascending' ? from : from + Math.floor(Math.random() * (to - from + 1));
  const threads = process.env.PORTALLOC_THREADS; // (read per call: one of the costlier lines of a single-port call)
  return {
    request: {
      count: count as number,
      host,
      protocol,
      rangeFrom: from,
      rangeTo: to,
      start,
      ephemeralLow: low,
      ephemeralHigh: high,
      // bind(0) slows down as the half of the range it prefers fills up: past
      // this many ports in one batch, the batch binds explicit ports instead.
      kernelBudget: Math.max(1, Math.floor((high - low + 1) / 3)),
      // Two threads for a large batch when a second CPU is free at the time;
      // PORTALLOC_THREADS=1: always one, PORTALLOC_THREADS=2: two wherever
      // the process may use two CPUs.
      threads: threads === '1' ? 1 : threads === '2' ? 2 : 0,
      exclude,
      hold,
      shared: given.shared === true,
    },
  };
}

/** Validates isFree arguments. */
export function checkArguments(port: unknown, options: unknown, binding: Binding): { port: number; host: string; protocol: ProtocolBits } {
  const checked = checkPort('port', port, 1);
  const given = checkKeys(options, CHECK_KEYS);
  const protocol = checkProtocol(given.protocol);
  return { port: checked, host: resolveHost(given.host, binding), protocol };
}
