/**
 * The JavaScript half of coordination (docs/internals.md). The ledger
 * (native/ledger.h, ledger.ts) keeps this process's callers apart and the
 * claims (native/claims.h) keep processes apart; this module only decides
 * where a batch starts and says how a coordinated batch gives way when it
 * cannot be served. (Claims expire by themselves: native/claims.h.)
 */
import { binding } from './backend';
import { CheckKind, type BatchOutcome, type BatchRequest } from './binding';
import { config } from './config';

/** How long a port handed out stays out of every path of this process, and a claim lives after its last use. */
export const CLAIM_MS = config.claimMs;

/** Where the next batch of each kind goes on from (this thread's; an order, not a guarantee). */
const next = new Map<string, number>();

/** Batches that go on from one another: same host, protocol and range. */
function kind(request: BatchRequest): string {
  if (request.host === '' && request.rangeFrom === 0) return KERNEL_KINDS[request.protocol]!; // (most calls: no string to build)
  return `${request.host}|${request.protocol}|${request.rangeFrom}-${request.rangeTo}`;
}
const KERNEL_KINDS = ['', '|1|0-0', '|2|0-0', '|3|0-0'];

/**
 * The port a batch starts from: on from where the last one of its kind
 * stopped, so this process fills the blocks it claims, walks over none of the
 * ports it just handed out, and, when a range runs short, reuses the ports it
 * handed out longest ago first. `ascending` batches always start at the
 * range's low end; the first batch of a kind at random.
 */
export function startOf(request: BatchRequest, ascending: boolean): number {
  if (ascending) return request.start;
  return next.get(kind(request)) ?? request.start;
}

/** Notes where a successful batch stopped. */
export function record(request: BatchRequest, outcome: BatchOutcome): void {
  if (!('ports' in outcome) || outcome.ports.length === 0) return;
  // The kernel's range goes on in its parity (candidates.h); a range port by port.
  const last = outcome.ports[outcome.ports.length - 1]!;
  next.set(kind(request), last + (request.rangeFrom === 0 ? 2 : 1));
}

const EMFILE = 24;
const ENFILE = 23;

/**
 * After a coordinated batch that could not be served, the batch to run
 * instead (undefined: the outcome stands). Out of fds: every claim is let go
 * and the batch runs without claims, so its error, if any, is the user's own.
 * Out of ports: the free ports left are claimed by other processes; the batch
 * runs without claims and may hand one of them out (docs/internals.md,
 * "Giving way"), after one more coordinated try (`attempt` counts the tries
 * so far): another process's batch may have held claims it was about to drop.
 * TIME_WAIT batches never give way: a port claimed elsewhere would be put into
 * TIME_WAIT under its owner.
 */
export function giveWay(outcome: BatchOutcome, request: BatchRequest, attempt: number): BatchRequest | undefined {
  if (!request.coordinate) return undefined;
  if ('errno' in outcome && (outcome.errno === EMFILE || outcome.errno === ENFILE)) {
    binding.releaseClaims?.();
    return { ...request, coordinate: false };
  }
  if (!('exhausted' in outcome) || request.check === CheckKind.TimeWait) return undefined;
  // Every port of the range refused by the kernel (privileges, a sandbox): no claim stood in the way.
  const size = request.rangeFrom !== 0 ? request.rangeTo - request.rangeFrom + 1 : request.ephemeralHigh - request.ephemeralLow + 1;
  if (outcome.refused >= size) return undefined;
  // Once more as it was: another process's batch may have held claims it is about to drop.
  return attempt === 0 ? request : { ...request, coordinate: false };
}
