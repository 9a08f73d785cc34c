import { describe, expectTypeOf, it } from 'vitest';
import { allocate, allocateAsync, backend, isFree, reserve, reserveAsync, type AllocateOptions, type Reservation } from '../dist/index.js';

describe('core types', () => {
  it('allocate and allocateAsync return numbers', () => {
    expectTypeOf(allocate).parameter(0).toEqualTypeOf<number>();
    expectTypeOf(allocate(3)).toEqualTypeOf<number[]>();
    expectTypeOf(allocateAsync(3)).toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(isFree(80)).toEqualTypeOf<boolean>();
    expectTypeOf(backend).toEqualTypeOf<'native' | 'js'>();
  });

  it('options are checked', () => {
    expectTypeOf<{ protocol: 'both'; range: [1, 2]; order: 'ascending'; exclude: Set<number> }>().toMatchTypeOf<AllocateOptions>();
    // @ts-expect-error: not a protocol
    allocate(1, { protocol: 'sctp' });
    // @ts-expect-error: a range is a pair
    allocate(1, { range: [1, 2, 3] });
    // @ts-expect-error: shared is for reserve
    allocate(1, { shared: true });
    reserve(1, { shared: true, range: [8000, 9000] });
  });

  it('a reservation is read-only and disposable', () => {
    const hold = reserve(2);
    expectTypeOf(hold).toEqualTypeOf<Reservation>();
    expectTypeOf(hold.ports).toEqualTypeOf<readonly number[]>();
    expectTypeOf(hold.fds).toEqualTypeOf<readonly number[]>();
    expectTypeOf(hold[Symbol.dispose]).toEqualTypeOf<() => void>();
    expectTypeOf(reserveAsync(1)).toEqualTypeOf<Promise<Reservation>>();
    // @ts-expect-error: ports are read-only
    hold.ports.push(1);
  });
});
