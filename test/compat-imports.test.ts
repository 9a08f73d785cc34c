/**
 * The compatibility entry points as a user's program loads them: by package
 * name, from CommonJS and from ESM, in a new Node process.
 */
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeRange, runProgram, userProject } from './compat-helpers';
import { backendName } from './helpers';

let dir: string;
beforeAll(() => {
  dir = userProject();
  fs.chmodSync(dir, 0o755);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe(`imports by package name (${backendName})`, () => {
  it('CommonJS: require("portalloc") has getPort as default and by name', () => {
    const [port] = freeRange(2);
    const result = runProgram(
      dir,
      'get-port.cjs',
      `const portalloc = require('portalloc');
const { getPort, portNumbers, clearLockedPorts } = require('portalloc');
(async () => {
  const first = await portalloc.default({ port: portNumbers(${port}, ${port + 1}) });
  const second = await getPort({ port: [${port}, ${port + 1}] });
  clearLockedPorts();
  const again = await getPort({ port: ${port} });
  console.log(JSON.stringify({ same: portalloc.default === portalloc.getPort, type: typeof portalloc.default, first, second, again, backend: portalloc.backend }));
})();`,
    );
    expect(result).toEqual({ same: true, type: 'function', first: port, second: port + 1, again: port, backend: backendName });
  });

  it('ESM: import getPort from "portalloc", with named exports, sharing locks with require()', () => {
    const [port] = freeRange(2);
    const result = runProgram(
      dir,
      'get-port.mjs',
      `import getPort, { getPort as named, portNumbers, clearLockedPorts, waitForPort, waitUntilFree, allocate } from 'portalloc';
import { createRequire } from 'node:module';
const cjs = createRequire(import.meta.url)('portalloc');
const first = await getPort({ port: portNumbers(${port}, ${port + 1}) });
const viaRequire = await cjs.getPort({ port: [${port}, ${port + 1}] });
clearLockedPorts();
console.log(JSON.stringify({ same: getPort === named && getPort === cjs.default, first, viaRequire, again: await cjs.getPort({ port: ${port} }),
  functions: [waitForPort, waitUntilFree, allocate, clearLockedPorts].every((f) => typeof f === 'function') }));`,
    );
    expect(result).toEqual({ same: true, first: port, viaRequire: port + 1, again: port, functions: true });
  });

  it('portalloc/portfinder from CommonJS and ESM, with assignable settings', () => {
    const [port] = freeRange(3);
    const cjs = runProgram(
      dir,
      'portfinder.cjs',
      `const portfinder = require('portalloc/portfinder');
portfinder.basePort = ${port};
portfinder.getPort((err, found) => {
  portfinder.getPortsPromise(2).then((ports) => console.log(JSON.stringify({ err, found, ports, basePort: portfinder.basePort })));
});`,
    );
    // Asked again once the first call has delivered, portfinder's answer: the same free port.
    expect(cjs).toEqual({ err: null, found: port, ports: [port, port + 1], basePort: port });
    const esm = runProgram(
      dir,
      'portfinder.mjs',
      `import portfinder, { getPortPromise, setBasePort } from 'portalloc/portfinder';
setBasePort(${port + 1});
const viaSetter = await getPortPromise();
portfinder.basePort = ${port + 2};
console.log(JSON.stringify({ viaSetter, viaAssignment: await portfinder.getPortPromise(), highestPort: portfinder.highestPort }));`,
    );
    expect(esm).toEqual({ viaSetter: port + 1, viaAssignment: port + 2, highestPort: 65535 });
  });

  it('portalloc/detect-port from CommonJS ({ detect }) and ESM (default)', () => {
    const [port] = freeRange(1);
    const cjs = runProgram(
      dir,
      'detect.cjs',
      `const { detect, detectPort, waitPort, WaitPortRetryError, IPAddressNotAvailableError } = require('portalloc/detect-port');
detect(${port}).then((found) => console.log(JSON.stringify({ found, alias: detect === detectPort, classes: typeof WaitPortRetryError + typeof IPAddressNotAvailableError + typeof waitPort })));`,
    );
    expect(cjs).toEqual({ found: port, alias: true, classes: 'functionfunctionfunction' });
    const esm = runProgram(
      dir,
      'detect.mjs',
      `import detectPort, { detect } from 'portalloc/detect-port';
console.log(JSON.stringify({ found: await detectPort(${port}), same: detectPort === detect }));`,
    );
    expect(esm).toEqual({ found: port, same: true });
  });

  it('a get-port program runs unchanged after switching its import', () => {
    const [port] = freeRange(3);
    // get-port's README usage, with only the module name changed.
    const result = runProgram(
      dir,
      'readme.mjs',
      `import getPort, { portNumbers, clearLockedPorts } from 'portalloc';
import net from 'node:net';
const random = await getPort();
const preferred = await getPort({ port: ${port} });
const list = await getPort({ port: [${port}, ${port + 1}, ${port + 2}] });
const range = await getPort({ port: portNumbers(${port}, ${port + 2}) });
clearLockedPorts();
const server = net.createServer().listen(await getPort({ port: ${port} }));
await new Promise((resolve) => server.once('listening', resolve));
const busy = await getPort({ port: ${port} });
server.close();
console.log(JSON.stringify({ random: random > 0, preferred, list, range, listened: server.address() === null, busy: busy !== ${port} }));`,
    );
    expect(result).toEqual({ random: true, preferred: port, list: port + 1, range: port + 2, listened: true, busy: true });
  });

  it('portalloc/tcp-port-used and portalloc/get-port-please from CommonJS and ESM', () => {
    const [port] = freeRange(2);
    const program = (load: string) => `${load}
const net = require('node:net');
(async () => {
  const server = net.createServer().listen(${port}, '127.0.0.1');
  await new Promise((resolve) => server.once('listening', resolve));
  const used = await tcpPortUsed.check(${port});
  await tcpPortUsed.waitUntilUsed(${port}, 10, 5000);
  const next = await please.getPort({ port: ${port}, ports: [${port + 1}] });
  server.close();
  await tcpPortUsed.waitUntilFree(${port}, 10, 5000);
  console.log(JSON.stringify({ used, next, unsafe: please.isUnsafePort(6000), error: typeof please.GetPortError }));
})();`;
    const expected = { used: true, next: port + 1, unsafe: true, error: 'function' };
    const cjs = runProgram(dir, 'wait-please.cjs', program("const tcpPortUsed = require('portalloc/tcp-port-used');\nconst please = require('portalloc/get-port-please');"));
    expect(cjs).toEqual(expected);
    const esm = runProgram(
      dir,
      'wait-please.mjs',
      program("import tcpPortUsed, { check } from 'portalloc/tcp-port-used';\nimport * as please from 'portalloc/get-port-please';\nimport { createRequire } from 'node:module';\nconst require = createRequire(import.meta.url);\nif (check !== tcpPortUsed.check) throw new Error('default and named differ');"),
    );
    expect(esm).toEqual(expected);
  });
});

describe.runIf(process.getuid?.() === 0)(`as an unprivileged user (${backendName})`, () => {
  it('portfinder and detect-port skip privileged ports (EACCES)', () => {
    const result = runProgram(
      dir,
      'privileged-compat.cjs',
      `const portfinder = require('portalloc/portfinder');
const { detect } = require('portalloc/detect-port');
(async () => {
  const fromPortfinder = await portfinder.getPortPromise({ port: 1000 });
  const fromDetect = await detect(80);
  console.log(JSON.stringify({ uid: process.getuid(), fromPortfinder, fromDetect }));
})();`,
      { uid: 65534, gid: 65534 },
    ) as { uid: number; fromPortfinder: number; fromDetect: number };
    expect(result.uid).toBe(65534);
    // Ports below 1024 refuse an unprivileged listener: portfinder scans on to 1024 and up.
    expect(result.fromPortfinder).toBeGreaterThanOrEqual(1024);
    // detect-port tries 80..89, all privileged, then takes a random port.
    expect(result.fromDetect).toBeGreaterThanOrEqual(1024);
  });
});
