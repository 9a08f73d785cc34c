/**
 * The backend, chosen once, here: the native addon, or the pure-JS backend
 * where the addon cannot load or PORTALLOC_BACKEND=js asks for it.
 */
import { loadAddon, type Binding } from './binding';
import { config } from './config';
import type { PortallocError } from './errors';
import { JsBinding } from './js-backend';

function loadNative(): Binding | undefined {
  if (config.backend === 'js') return undefined;
  try {
    return loadAddon();
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message.split('\n')[0] : String(cause);
    if (config.backend === 'native') {
      const error = new Error(`portalloc: PORTALLOC_BACKEND=native, but the native addon could not load: ${reason}`, { cause }) as PortallocError;
      error.code = 'ERR_PORTALLOC_NO_NATIVE';
      throw error;
    }
    process.emitWarning(`the native addon could not load (${reason}); using the slower pure-JS backend. Set PORTALLOC_BACKEND=js to silence this.`, {
      type: 'PortallocWarning',
      code: 'PORTALLOC_NO_NATIVE',
    });
    return undefined;
  }
}

const native = loadNative();

/** The running backend's functions. */
export const binding: Binding = native ?? new JsBinding();

/**
 * Which backend runs: `'native'` (the C++ addon: raw socket/bind/getsockname
 * in batches) or `'js'` (node:net in a worker thread, where the addon cannot
 * load or with `PORTALLOC_BACKEND=js`).
 *
 * @example
 * import { backend } from 'portalloc';
 * console.log(backend); // 'native'
 */
export const backend: 'native' | 'js' = native ? 'native' : 'js';
