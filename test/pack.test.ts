/**
 * The published package, as a user gets it: `npm pack` the repository, build
 * the prebuilt addon into the packed copy (`npm run prebuilds`, as a release
 * does), install the tarball into a fresh project whose PATH holds node, npm
 * and sh and no compiler, make or python, then use it every way a user can:
 * ESM import and CJS require of every entry in package.json `exports`, the
 * types of each from a TypeScript consumer, and the CLI.
 *
 * The repository itself is never written: the prebuild is compiled in a
 * staging copy, so this file can run beside the other test files.
 * Needs a built dist/ (`npm test` builds first) and a compiler (for the
 * staging prebuild only).
 */
import { execFileSync, spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

// Child processes and real sockets on a shared 2-core machine: generous limits (time is never asserted).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 240_000 });

const root = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  main: string;
  types: string;
  bin: Record<string, string>;
  exports: Record<string, unknown>;
};

// The suite is about the package, not a backend: where the suite runs once per backend
// (PORTALLOC_BACKEND pinned), it runs with the native one only.
const once = process.env.PORTALLOC_BACKEND === 'js';

let work: string;
let tarball: string;
let packedFiles: string[];
let bin: string;
let app: string;

/** The environment of a user's shell with no build tools: only node, npm, npx and sh on PATH. */
function userEnv(): NodeJS.ProcessEnv {
  return {
    HOME: os.homedir(),
    PATH: bin,
    // The developer's npm cache, so the two dependencies install without the network when cached.
    npm_config_cache: path.join(os.homedir(), '.npm'),
    npm_config_update_notifier: 'false',
  };
}

function run(command: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = userEnv()): SpawnSyncReturns<string> {
  return spawnSync(command, args, { cwd, env, encoding: 'utf8', timeout: 120_000 });
}

function mustRun(command: string, args: string[], cwd: string, env?: NodeJS.ProcessEnv): SpawnSyncReturns<string> {
  const result = run(command, args, cwd, env);
  if (result.status !== 0) {
    throw new Error(`${command} ${args.join(' ')} exited ${result.status ?? result.signal}\n${result.stdout}\n${result.stderr}`);
  }
  return result;
}

/** `npm pack` without lifecycle scripts (dist/ is built already); returns the tarball and its file list. */
function pack(directory: string, destination: string): { file: string; files: string[] } {
  fs.mkdirSync(destination, { recursive: true });
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', destination], {
    cwd: directory,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [info] = JSON.parse(out) as [{ filename: string; files: { path: string }[] }];
  return { file: path.join(destination, info.filename), files: info.files.map((entry) => entry.path).sort() };
}

/** A fresh project that depends on nothing yet. */
function freshProject(name: string): string {
  const directory = path.join(work, name);
  fs.mkdirSync(directory);
  fs.writeFileSync(path.join(directory, 'package.json'), JSON.stringify({ name, version: '1.0.0', private: true }));
  return directory;
}

function install(project: string, file: string): SpawnSyncReturns<string> {
  return run('npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--foreground-scripts', file], project);
}

/** Every subpath of the exports map that names code (not ./package.json). */
function subpaths(exportsMap: Record<string, unknown>): string[] {
  return Object.keys(exportsMap).filter((key) => key !== './package.json' && !key.includes('*'));
}

/**
 * Entries that load only inside their test runner (an optional peer dependency), by subpath:
 * the runner's package. They are loaded by their runners in test/test-runners.test.ts; here
 * their files ship and their types check against the runner's.
 */
const RUNNER_ENTRIES: Record<string, string> = { './vitest': 'vitest', './playwright': '@playwright/test' };

/** Subpaths with a `require` condition (portalloc/vitest is ESM only, as vitest is). */
function requirable(subpath: string): boolean {
  const entry = manifest.exports[subpath];
  return typeof entry === 'string' || (typeof entry === 'object' && entry !== null && ('require' in entry || 'default' in entry));
}

function specifier(subpath: string): string {
  return subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`;
}

/** Every file path an exports entry points to, at any depth of conditions. */
function targets(entry: unknown): { condition: string; file: string }[] {
  if (typeof entry === 'string') return [{ condition: 'default', file: entry }];
  if (entry === null || typeof entry !== 'object') return [];
  return Object.entries(entry).flatMap(([condition, value]) =>
    typeof value === 'string' ? [{ condition, file: value }] : targets(value),
  );
}

beforeAll(() => {
  if (once) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-pack-'));
  // 1. The repository as npm would pack it, 2. unpacked into a staging copy
  // where `npm run prebuilds` compiles the addon, 3. packed again.
  const first = pack(root, path.join(work, 'first'));
  const staging = path.join(work, 'staging');
  fs.mkdirSync(staging);
  execFileSync('tar', ['xzf', first.file, '-C', staging]);
  const stagedPackage = path.join(staging, 'package');
  fs.rmSync(path.join(stagedPackage, 'prebuilds'), { recursive: true, force: true });
  fs.symlinkSync(path.join(root, 'node_modules'), path.join(stagedPackage, 'node_modules'));
  mustRun('npm', ['run', 'prebuilds'], stagedPackage, process.env);
  fs.rmSync(path.join(stagedPackage, 'build'), { recursive: true, force: true });
  const second = pack(stagedPackage, path.join(work, 'release'));
  tarball = second.file;
  packedFiles = second.files;

  bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  const nodeDir = path.dirname(process.execPath);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const tool of ['npm', 'npx']) fs.symlinkSync(fs.realpathSync(path.join(nodeDir, tool)), path.join(bin, tool));
  fs.symlinkSync('/bin/sh', path.join(bin, 'sh')); // npm runs package scripts with sh

  app = freshProject('app');
  const installed = install(app, tarball);
  if (installed.status !== 0) throw new Error(`npm install of the tarball failed\n${installed.stdout}\n${installed.stderr}`);
  fs.writeFileSync(path.join(work, 'install.log'), installed.stdout + installed.stderr);
}, 240_000);

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(once)('npm pack', () => {
  it('holds exactly what users need: dist, native sources, binding.gyp, the prebuild, LICENSE, README', () => {
    const allowed = [
      /^package\.json$/,
      /^LICENSE$/,
      /^README\.md$/,
      /^binding\.gyp$/,
      /^native\/[\w-]+\.(cc|h)$/,
      /^dist\/[\w-]+(\/[\w-]+)*\.(js|mjs|cjs|d\.ts|d\.mts|d\.cts)$/,
      /^prebuilds\/linux-x64\/[\w.-]+\.node$/,
    ];
    const unexpected = packedFiles.filter((file) => !allowed.some((pattern) => pattern.test(file)));
    expect(unexpected).toEqual([]);

    const required = ['package.json', 'LICENSE', 'binding.gyp', manifest.main, manifest.types, ...Object.values(manifest.bin)];
    for (const subpath of subpaths(manifest.exports)) required.push(...targets(manifest.exports[subpath]).map((t) => t.file));
    if (fs.existsSync(path.join(root, 'README.md'))) required.push('README.md');
    for (const source of fs.readdirSync(path.join(root, 'native'))) required.push(`native/${source}`);
    for (const file of required) expect(packedFiles, `${file} must be in the tarball`).toContain(path.normalize(file));
    expect(packedFiles.some((file) => file.startsWith('prebuilds/linux-x64/') && file.endsWith('.node'))).toBe(true);
    // No shipped module points at a source map that does not ship.
    for (const file of packedFiles.filter((f) => /\.(m|c)?js$/.test(f))) {
      const mapped = /\/\/# sourceMappingURL=(\S+)/.exec(fs.readFileSync(path.join(root, file), 'utf8'));
      if (mapped) expect(packedFiles, `${file} points at ${mapped[1]}`).toContain(path.join(path.dirname(file), mapped[1]!));
    }
    // Every module dist/ ships is compiled from src/ (no stale leftovers of a removed file).
    for (const file of packedFiles.filter((f) => /^dist\/.*\.js$/.test(f))) {
      const source = path.join(root, 'src', file.slice('dist/'.length).replace(/\.js$/, '.ts'));
      expect(fs.existsSync(source), `${file} has no source in src/`).toBe(true);
    }
  });
});

describe.skipIf(once)('installed from the tarball with no compiler, make or python on PATH', () => {
  it('has no build tools on PATH (the premise of this suite)', () => {
    const found = run('sh', ['-c', 'for t in cc gcc g++ c++ clang make python3 python; do command -v $t; done; true'], app);
    expect(found.status).toBe(0);
    expect(found.stdout.trim()).toBe('');
  });

  it('installed without compiling: the install script found the prebuild', () => {
    const log = fs.readFileSync(path.join(work, 'install.log'), 'utf8');
    expect(log).not.toMatch(/gyp (info|ERR)|node-gyp rebuild|Could not find any Python/);
    const installed = path.join(app, 'node_modules', manifest.name);
    expect(fs.existsSync(path.join(installed, 'build'))).toBe(false);
    expect(fs.readdirSync(path.join(installed, 'prebuilds', 'linux-x64')).some((f) => f.endsWith('.node'))).toBe(true);
    for (const absent of ['src', 'test', 'bench', 'scripts', 'docs']) expect(fs.existsSync(path.join(installed, absent))).toBe(false);
  });

  it('loads the native backend and allocates through require and import of every exports entry', () => {
    // The app has no vitest or Playwright, so these loads also show that portalloc never loads them.
    const specs = subpaths(manifest.exports).filter((subpath) => !(subpath in RUNNER_ENTRIES)).map(specifier);
    expect(specs).toContain(manifest.name);
    fs.writeFileSync(
      path.join(app, 'check.cjs'),
      `const specs = ${JSON.stringify(specs)};
const out = {};
for (const spec of specs) out[spec] = Object.keys(require(spec)).filter((k) => k !== '__esModule').sort();
const root = require(${JSON.stringify(manifest.name)});
out.backend = root.backend;
out.ports = root.allocate(3);
console.log(JSON.stringify(out));
`,
    );
    fs.writeFileSync(
      path.join(app, 'check.mjs'),
      `const specs = ${JSON.stringify(specs)};
const out = {};
for (const spec of specs) out[spec] = Object.keys(await import(spec)).filter((k) => k !== 'module.exports').sort();
const root = await import(${JSON.stringify(manifest.name)});
out.backend = root.backend;
out.ports = await root.allocateAsync(3);
console.log(JSON.stringify(out));
`,
    );
    const cjs = mustRun('node', ['check.cjs'], app);
    const esm = mustRun('node', ['check.mjs'], app);
    expect(cjs.stderr).toBe(''); // no warning: the addon loaded
    expect(esm.stderr).toBe('');
    const fromRequire = JSON.parse(cjs.stdout) as Record<string, unknown>;
    const fromImport = JSON.parse(esm.stdout) as Record<string, unknown>;
    expect(fromRequire.backend).toBe('native');
    expect(fromImport.backend).toBe('native');
    for (const ports of [fromRequire.ports, fromImport.ports] as number[][]) {
      expect(new Set(ports).size).toBe(3);
      for (const port of ports) expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true);
    }
    const named = (names: unknown) => (names as string[]).filter((name) => name !== 'default');
    for (const spec of specs) {
      // The ESM face exports the same names as the CommonJS module (a default export aside:
      // ESM gives one for any CommonJS module).
      expect(named(fromImport[spec]), spec).toEqual(named(fromRequire[spec]));
      expect((fromRequire[spec] as string[]).length, `${spec} exports something`).toBeGreaterThan(0);
    }
  });

  it('gives types for import and require of every exports entry (tsc --noEmit on a consumer)', () => {
    const specs = subpaths(manifest.exports).map(specifier);
    for (const subpath of subpaths(manifest.exports)) {
      const conditions = targets(manifest.exports[subpath]);
      expect(conditions.some((t) => t.condition === 'types'), `${subpath} has a types condition`).toBe(true);
    }
    const core = subpaths(manifest.exports).filter((subpath) => !(subpath in RUNNER_ENTRIES));
    const namespaces = core.map(specifier).map((spec, i) => `import * as entry${i} from '${spec}';\nvoid entry${i};`).join('\n');
    const usage = (mod: string) => `${namespaces}
import { allocate, reserve, isFree, backend, type Reservation, type AllocateOptions } from '${mod}';

const options: AllocateOptions = { protocol: 'tcp', range: [20000, 30000] };
const ports: number[] = allocate(2, options);
const hold: Reservation = reserve(1);
hold.release();
const free: boolean = isFree(ports[0]!);
const which: 'native' | 'js' = backend;
// @ts-expect-error: count is a number; a string must not type-check
allocate('2');
export { free, which };
`;
    fs.writeFileSync(path.join(app, 'consumer.mts'), usage(manifest.name));
    fs.writeFileSync(path.join(app, 'consumer.cts'), usage(manifest.name));
    fs.writeFileSync(
      path.join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable'],
          // A Node project has @types/node (an entry point's types may name node:net's); the repository's copy serves.
          typeRoots: [path.join(root, 'node_modules', '@types')],
          types: ['node'],
          strict: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['consumer.mts', 'consumer.cts'],
      }),
    );
    const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');
    const result = run('node', [tsc, '-p', 'tsconfig.json'], app);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });

  it('gives types for the test-runner entries, against the runners themselves', () => {
    // A project that uses portalloc/vitest has vitest; the repository's copies serve, linked into a
    // project of its own (the app above keeps having none) that holds a copy of the installed
    // package (a link would resolve the runners from the app).
    const project = freshProject('runners');
    fs.mkdirSync(path.join(project, 'node_modules', '@playwright'), { recursive: true });
    fs.cpSync(path.join(app, 'node_modules', manifest.name), path.join(project, 'node_modules', manifest.name), { recursive: true });
    for (const peer of Object.values(RUNNER_ENTRIES)) fs.symlinkSync(path.join(root, 'node_modules', peer), path.join(project, 'node_modules', peer));
    const consumers: string[] = [];
    for (const [subpath, peer] of Object.entries(RUNNER_ENTRIES)) {
      expect(manifest.exports, `${subpath} is an exports entry`).toHaveProperty([subpath]);
      const kinds = requirable(subpath) ? ['mts', 'cts'] : ['mts'];
      for (const kind of kinds) {
        const file = `${peer.replace(/\W/g, '-')}.${kind}`;
        consumers.push(file);
        fs.writeFileSync(
          path.join(project, file),
          `import { test } from '${specifier(subpath)}';
test('a test', async ({ port, ports }) => {
  const first: number = port;
  const more: number[] = await ports(2, { range: [20000, 30000] });
  // @ts-expect-error: port is a number
  const wrong: string = port;
  void first, more, wrong;
});
`,
        );
      }
    }
    fs.writeFileSync(
      path.join(project, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          module: 'node16',
          moduleResolution: 'node16',
          target: 'ES2022',
          lib: ['ES2022', 'ESNext.Disposable', 'DOM'],
          typeRoots: [path.join(root, 'node_modules', '@types')],
          types: ['node'],
          strict: true,
          noEmit: true,
          // The runners' own declarations are theirs to check; portalloc's are checked above.
          skipLibCheck: true,
        },
        files: consumers,
      }),
    );
    const result = run('node', [path.join(root, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', 'tsconfig.json'], project);
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
    expect(consumers).toHaveLength(3); // portalloc/vitest as ESM; portalloc/playwright as ESM and CommonJS
  });

  it('runs the CLI through its bin and through npx', () => {
    const direct = mustRun(path.join(app, 'node_modules', '.bin', Object.keys(manifest.bin)[0]!), ['3'], app);
    const viaNpx = mustRun('npx', ['--no-install', Object.keys(manifest.bin)[0]!, '2', '--json'], app);
    const lines = direct.stdout.trim().split('\n');
    expect(lines).toHaveLength(3);
    expect(new Set(lines).size).toBe(3);
    for (const line of lines) expect(line).toMatch(/^\d{1,5}$/);
    const json = JSON.parse(viaNpx.stdout) as number[];
    expect(json).toHaveLength(2);
    expect(direct.stderr).toBe('');
  });
});

describe.skipIf(once)('installed where no prebuild fits and nothing can compile', () => {
  it('installs anyway and falls back to the JS backend with one warning, never a crash', () => {
    const unpacked = path.join(work, 'noprebuild');
    fs.mkdirSync(unpacked);
    execFileSync('tar', ['xzf', tarball, '-C', unpacked]);
    fs.rmSync(path.join(unpacked, 'package', 'prebuilds'), { recursive: true });
    const stripped = path.join(work, 'portalloc-noprebuild.tgz');
    execFileSync('tar', ['czf', stripped, '-C', unpacked, 'package']);

    const project = freshProject('fallback');
    const installed = install(project, stripped);
    expect(installed.status, installed.stdout + installed.stderr).toBe(0);
    // The install script did try to compile (no prebuild), failed without python, and let the install succeed.
    expect(installed.stdout + installed.stderr).toMatch(/gyp/);

    fs.writeFileSync(
      path.join(project, 'both.mjs'),
      `import { createRequire } from 'node:module';
const esm = await import(${JSON.stringify(manifest.name)});
const cjs = createRequire(import.meta.url)(${JSON.stringify(manifest.name)});
const ports = esm.allocate(2);
console.log(JSON.stringify({ esm: esm.backend, cjs: cjs.backend, ports }));
`,
    );
    const result = run('node', ['both.mjs'], project);
    expect(result.status, result.stderr).toBe(0);
    const out = JSON.parse(result.stdout) as { esm: string; cjs: string; ports: number[] };
    expect(out).toMatchObject({ esm: 'js', cjs: 'js' });
    expect(new Set(out.ports).size).toBe(2);
    const warnings = result.stderr.split('\n').filter((line) => line.includes('PortallocWarning'));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/native addon could not load .*pure-JS backend/);
    expect(result.stderr).not.toMatch(/\n\s+at /); // no stack trace

    const cli = run(path.join(project, 'node_modules', '.bin', Object.keys(manifest.bin)[0]!), ['2'], project);
    expect(cli.status).toBe(0);
    expect(cli.stdout.trim().split('\n')).toHaveLength(2);
  });
});
