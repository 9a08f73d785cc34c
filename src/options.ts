/**
 * Option validation: every bad input becomes a TypeError or RangeError that
 * names the option and the value, before any socket is opened.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { CheckKind, type BatchRequest, type Binding, type ProtocolBits } from './binding';
import { config } from './config';
import { rangeError, show, systemError, typeError, unsupportedError, type PortallocError } from './errors';

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
   * disjoint ports (cross-process claims, docs/internals.md). Default: on with
   * the native backend (`PORTALLOC_COORDINATE=0` turns the default off); `true`
   * on the JS backend throws. Within this process no two callers ever get the
   * same port, whatever this says.
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
  /** `order: 'ascending'`: every batch starts at the range's low end. */
  ascending: boolean;
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

export function checkRange(range: unknown): [number, number] | undefined {
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

/** At most this many items are read from an `exclude` iterable (a port may repeat; an endless one must end). */
export const MAX_EXCLUDE_ITEMS = 1 << 20;

/** The excluded ports as a bitmap of 65,536 bits, or undefined for none. */
export function checkExclude(exclude: unknown): Uint8Array | undefined {
  if (exclude === undefined) return undefined;
  if (exclude === null || typeof (exclude as Iterable<unknown>)[Symbol.iterator] !== 'function' || typeof exclude === 'string') {
    throw typeError('options.exclude', 'an iterable of ports', exclude);
  }
  const bitmap = new Uint8Array(65536 / 8);
  let any = false;
  let items = 0;
  for (const port of exclude as Iterable<unknown>) {
    if (++items > MAX_EXCLUDE_ITEMS) throw rangeError('options.exclude', `at most ${MAX_EXCLUDE_ITEMS} items`, exclude);
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
  if (host.includes('\0')) {
    const error = new TypeError(`portalloc: options.host must be an IP address or a host name; got ${show(host)}`) as TypeError & { code: string };
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
}

/** Whether an IPv6 literal's zone (`fe80::1%lo`, `fe80::1%2`) names an interface of this machine; true without a zone. */
export function zoneKnown(host: string): boolean {
  const zone = host.includes('%') ? host.slice(host.indexOf('%') + 1) : undefined;
  if (zone === undefined) return true;
  if (/^\d+$/.test(zone)) return Number(zone) > 0 && Number(zone) <= 0xffffffff;
  return Object.hasOwn(os.networkInterfaces(), zone);
}

export function resolveHost(host: unknown, binding: Binding): string {
  checkHost(host);
  if (host === undefined) return '';
  if (net.isIP(host) !== 0) {
    if (!zoneKnown(host)) {
      const error = new TypeError(`portalloc: options.host ${show(host)} names no network interface of this machine`) as TypeError & { code: string };
      error.code = 'ERR_INVALID_ARG_VALUE';
      throw error;
    }
    return host;
  }
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

/** ip_local_reserved_ports as a bitmap (undefined: none), and when it was read (performance.now()). */
let reserved: { bits: Uint8Array | undefined; at: number } | undefined;
/** How long a reading of ip_local_reserved_ports serves (a sysctl an administrator changes rarely). */
const RESERVED_READ_MS = 1000;

/**
 * The ports of `net.ipv4.ip_local_reserved_ports`, as a bitmap of 65,536 bits
 * (undefined when there are none, or no /proc). The kernel never picks them
 * for bind(0) or connect(); portalloc never picks them either: every batch
 * excludes them, and so do the drop-ins' random ports. Read at most once a second.
 */
export function reservedPorts(): Uint8Array | undefined {
  const now = performance.now(); // (monotonic: a clock set back cannot keep an old reading)
  if (reserved && now - reserved.at < RESERVED_READ_MS) return reserved.bits;
  let bits: Uint8Array | undefined;
  try {
    for (const item of fs.readFileSync('/proc/sys/net/ipv4/ip_local_reserved_ports', 'utf8').trim().split(',')) {
      const [low, high = low] = item.split('-').map(Number);
      if (!Number.isInteger(low) || !Number.isInteger(high) || low! < 1 || high! > 65535) continue;
      bits ??= new Uint8Array(8192);
      for (let port = low!; port <= high!; port++) bits[port >> 3]! |= 1 << (port & 7);
    }
  } catch {
    // Not Linux, or /proc is not mounted: none.
  }
  reserved = { bits, at: now };
  return bits;
}

/** The user's excluded ports and the reserved ones, as one bitmap (undefined for none). */
function excluding(user: Uint8Array | undefined): Uint8Array | undefined {
  const kernel = reservedPorts();
  if (!kernel) return user;
  if (!user) return kernel; // (read only: a batch never writes its exclude)
  for (let i = 0; i < user.length; i++) user[i]! |= kernel[i]!;
  return user;
}

/** What a call asks for: allocate's ports, reserve's holds. */
export type Purpose = 'allocate' | 'reserve';

/** Validates allocate/reserve arguments and turns them into one batch for `binding` ('native' or 'js'). */
export function plan(count: unknown, options: unknown, binding: Binding, purpose: Purpose, backend: 'native' | 'js'): Plan {
  checkCount(count);
  const given = checkKeys(options, purpose === 'reserve' ? RESERVE_KEYS : PLAIN_KEYS);
  const protocol = checkProtocol(given.protocol);
  const range = checkRange(given.range);
  const order = checkOrder(given.order);
  const exclude = excluding(checkExclude(given.exclude));
  if (given.shared !== undefined && typeof given.shared !== 'boolean') throw typeError('options.shared', 'a boolean', given.shared);
  const timeWait = checkTimeWait(given.reserve);
  const coordinate = checkCoordinate(given.coordinate, backend);
  let host = resolveHost(given.host, binding);
  if (timeWait) host = timeWaitHost(host, protocol, backend);
  if (given.shared === true && backend === 'js') throw sharedUnsupported();
  const [low, high] = ephemeralRange();
  const [from, to] = range ?? [0, 0];
  const start = range === undefined ? 0 : order === 'ascending' ? from : from + Math.floor(Math.random() * (to - from + 1));
  const request: BatchRequest = {
    count: count as number,
    host,
    protocol,
    check: purpose === 'reserve' ? CheckKind.Hold : timeWait ? CheckKind.TimeWait : CheckKind.Free,
    rangeFrom: from,
    rangeTo: to,
    start,
    ephemeralLow: low,
    ephemeralHigh: high,
    threads: config.threads,
    exclude,
    shared: given.shared === true,
    coordinate,
    probeOff: !config.probe,
    windowMs: config.claimMs,
  };
  return { request, ascending: order === 'ascending' };
}

function checkTimeWait(reserve: unknown): boolean {
  if (reserve === undefined) return false;
  if (typeof reserve !== 'string') throw typeError('options.reserve', "'timewait'", reserve);
  if (reserve !== 'timewait') {
    const error = new RangeError(`portalloc: options.reserve must be 'timewait'; got ${show(reserve)}`) as RangeError & { code: string };
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
  return true;
}

/** Cross-process claims: native only; the default follows PORTALLOC_COORDINATE. */
function checkCoordinate(coordinate: unknown, backend: 'native' | 'js'): boolean {
  if (coordinate !== undefined && typeof coordinate !== 'boolean') throw typeError('options.coordinate', 'a boolean', coordinate);
  if (coordinate === true && backend === 'js') {
    throw unsupportedError(
      'options.coordinate: true needs the native backend: node:net cannot claim abstract unix socket names. ' +
        'Omit it (no two callers in this process ever get the same port) or install portalloc where its addon loads.',
    );
  }
  return backend === 'native' && (coordinate ?? config.coordinate);
}

/** The host of a TIME_WAIT reservation: TCP on a loopback address (default 127.0.0.1); native only. */
function timeWaitHost(host: string, protocol: ProtocolBits, backend: 'native' | 'js'): string {
  if (backend === 'js') {
    throw unsupportedError(
      "reserve: 'timewait' needs the native backend: node:net sets SO_REUSEADDR before it binds, so its bind could land on a port " +
        'that another process holds shared or that is already in TIME_WAIT, and hand that out. Install portalloc where its addon loads.',
    );
  }
  if (protocol !== 1) throw rangeError('options.protocol', "'tcp' with reserve: 'timewait' (TIME_WAIT is a TCP state)", ['udp', 'udp', 'both'][protocol - 1]);
  const loopback = host === '' ? '127.0.0.1' : host;
  if (!/^127\./.test(loopback) && loopback !== '::1') {
    throw rangeError('options.host', "a loopback address with reserve: 'timewait' (it connects to itself)", loopback);
  }
  return loopback;
}

export function sharedUnsupported(): PortallocError {
  return unsupportedError(
    'shared holds need the native backend: node:net cannot set SO_REUSEADDR on a socket after it is bound. ' +
      'Use an exclusive reserve(), or install portalloc where its addon loads.',
  );
}

/** Validates isFree arguments. */
export function checkArguments(port: unknown, options: unknown, binding: Binding): { port: number; host: string; protocol: ProtocolBits } {
  const checked = checkPort('port', port, 1);
  const given = checkKeys(options, CHECK_KEYS);
  const protocol = checkProtocol(given.protocol);
  return { port: checked, host: resolveHost(given.host, binding), protocol };
}
