/**
 * A linked copy under vitest: a project that depends on portalloc by a
 * symlink from outside node_modules (what `npm link`, a `file:` dependency or
 * a workspace makes), whose vitest test imports every entry of package.json
 * `exports`. vite transforms files outside node_modules itself, so this is
 * where an ESM face that leaned on a CommonJS default import came out
 * undefined. The inner test checks every export is defined, is the very
 * object require() gives (one copy of portalloc), and that the functions work.
 * Needs a built dist/ (`npm test` builds first).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backendName } from './helpers';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 60_000 });

const root = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { name: string; exports: Record<string, unknown> };
const entries = Object.entries(manifest.exports)
  .filter(([subpath]) => subpath !== './package.json')
  .map(([subpath, entry]) => ({
    specifier: subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`,
    // ESM only (portalloc/vitest): no require() to compare with.
    requirable: typeof entry === 'string' || (typeof entry === 'object' && entry !== null && 'require' in entry),
  }));

const innerTest = `import { createRequire } from 'node:module';
import net from 'node:net';
import { expect, it } from 'vitest';
import getPort, { allocate, reserve, backend } from 'portalloc';
import detectPort from 'portalloc/detect-port';
import portfinder from 'portalloc/portfinder';
import { test as portTest } from 'portalloc/vitest';

const require = createRequire(import.meta.url);
const entries = ${JSON.stringify(entries)};

function listen(port) {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen(port, () => server.close(() => resolve(port)));
  });
}

it.each(entries)('$specifier: every export is defined, and is what require() gives', async ({ specifier, requirable }) => {
  const imported = await import(specifier);
  const required = requirable ? require(specifier) : imported;
  const names = Object.keys(required).filter((name) => name !== '__esModule');
  expect(names.length).toBeGreaterThan(0);
  for (const name of names) {
    expect(imported[name], name).toBeDefined();
    expect(imported[name], name).toBe(required[name]);
  }
});

it('the functions work', async () => {
  expect(backend).toBe(process.env.PORTALLOC_BACKEND);
  const ports = allocate(3);
  expect(new Set(ports).size).toBe(3);
  for (const port of ports) await listen(port);
  const hold = reserve(1);
  await expect(listen(hold.ports[0])).rejects.toMatchObject({ code: 'EADDRINUSE' });
  hold.release();
  await listen(await getPort());
  await listen(await detectPort());
  portfinder.basePort = 20000;
  expect(require('portalloc/portfinder').basePort).toBe(20000);
  expect(await portfinder.getPortPromise()).toBeGreaterThanOrEqual(20000);
});

portTest('portalloc/vitest: a Node server listens on the port fixture', async ({ port }) => {
  expect(Number.isInteger(port) && port > 0).toBe(true);
  await listen(port);
});
`;

let work: string;

beforeAll(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-linked-'));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'linked', version: '1.0.0', private: true, type: 'module' }));
  const modules = path.join(work, 'node_modules');
  fs.mkdirSync(modules);
  // What npm makes of "portalloc": "file:..": a symlink to the repository, outside node_modules.
  fs.symlinkSync(root, path.join(modules, manifest.name));
  fs.symlinkSync(path.join(root, 'node_modules', 'vitest'), path.join(modules, 'vitest'));
  fs.writeFileSync(path.join(work, 'linked.test.js'), innerTest);
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe(`a linked copy imported by a vitest test (${backendName})`, () => {
  it('every entry imports, is one copy with require(), and works', () => {
    const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const result = spawnSync(process.execPath, [vitest, 'run', '--reporter=json', '--outputFile=result.json'], {
      cwd: work,
      encoding: 'utf8',
      env: { ...process.env, PORTALLOC_BACKEND: backendName, VITEST: undefined, VITEST_POOL_ID: undefined, VITEST_WORKER_ID: undefined },
      timeout: 100_000,
    });
    const report = JSON.parse(fs.readFileSync(path.join(work, 'result.json'), 'utf8')) as {
      numPassedTests: number;
      numFailedTests: number;
      testResults: { assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
    };
    const failures = report.testResults.flatMap((file) => file.assertionResults.filter((test) => test.status !== 'passed'));
    expect(failures).toEqual([]);
    expect(report.numPassedTests).toBe(entries.length + 2);
    expect(result.status, result.stderr).toBe(0);
  });
});
