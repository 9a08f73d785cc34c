/**
 * The published types under every TypeScript module setting a user may have,
 * with skipLibCheck off (so portalloc's own declarations are checked too):
 * `npm pack` the repository, unpack it as node_modules/portalloc of a fresh
 * project, and run tsc on a consumer that imports every entry of package.json
 * `exports` (entries added later included): a namespace import, every name
 * the module exports at runtime, and its default export. An ESM-only entry
 * (no `require` condition: portalloc/vitest) is imported by the ESM consumers
 * only. An entry whose types name an optional peer (vitest, @playwright/test:
 * the runner entries) is checked where its runner's own types check: with a
 * modern target, under node16, nodenext and bundler (vitest's types need one
 * of those); the runners are the repository's, linked in.
 * Needs a built dist/ (`npm test` builds first).
 */
import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';

vi.setConfig({ testTimeout: 120_000, hookTimeout: 120_000 });

const root = path.resolve(__dirname, '..');
const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as {
  name: string;
  exports: Record<string, string | { import?: string | { default: string }; require?: string | { default: string } }>;
  peerDependencies?: Record<string, string>;
};
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

// About the package, not a backend: runs once, in the native project.
const once = process.env.PORTALLOC_BACKEND === 'js';

interface Entry {
  specifier: string;
  /** The names the module exports at runtime, `default` aside. */
  names: string[];
  hasDefault: boolean;
  esmOnly: boolean;
  /** Its types name an optional peer dependency (a test runner). */
  needsPeer: boolean;
}

const file = (value: string | { default: string } | undefined) => (typeof value === 'string' ? value : value?.default);

/** Every code entry of `exports`, with what it exports at runtime (required, or imported when it is ESM only). */
async function entries(): Promise<Entry[]> {
  const all: Entry[] = [];
  for (const [subpath, entry] of Object.entries(manifest.exports)) {
    if (subpath === './package.json') continue;
    const cjs = typeof entry === 'string' ? entry : file(entry.require);
    const types = cjs ? cjs.replace(/\.js$/, '.d.ts') : file(typeof entry === 'string' ? entry : entry.import)!.replace(/\.mjs$/, '.d.mts');
    const declarations = fs.readFileSync(path.join(root, types), 'utf8');
    const exported = (cjs ? require(path.join(root, cjs)) : await import(path.join(root, file(typeof entry === 'string' ? entry : entry.import)!))) as Record<string, unknown>;
    all.push({
      specifier: subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`,
      names: Object.keys(exported).filter((name) => name !== 'default' && name !== '__esModule' && name !== 'module.exports'),
      hasDefault: 'default' in exported,
      esmOnly: cjs === undefined,
      needsPeer: Object.keys(manifest.peerDependencies ?? {}).some((peer) => declarations.includes(`from '${peer}'`)),
    });
  }
  return all;
}

/** A consumer of every entry; each import is checked to be typed (not `any`), each default to be the export itself. */
function consumer(all: Entry[]): string {
  const lines = ['type IsAny<T> = 0 extends 1 & T ? true : false;'];
  all.forEach((entry, i) => {
    const named = entry.names.map((name) => `${name} as e${i}_${name}`);
    lines.push(`import * as e${i} from '${entry.specifier}';`, `import { ${named.join(', ')} } from '${entry.specifier}';`);
    const typed = [`e${i}`, ...entry.names.map((name) => `e${i}_${name}`)];
    lines.push(`export const e${i}_typed: [${typed.map((name) => `IsAny<typeof ${name}>`).join(', ')}] = [${typed.map(() => 'false').join(', ')}];`);
    if (entry.hasDefault) {
      lines.push(
        `import e${i}_default from '${entry.specifier}';`,
        `export const e${i}_defaultTyped: IsAny<typeof e${i}_default> = false;`,
        // Not the CommonJS module's exports object (which has a .default): the default export.
        `export const e${i}_unwrapped: typeof e${i}_default extends { default: unknown } ? false : true = true;`,
      );
    }
  });
  // The issue's program, as a new user writes it.
  lines.push(
    `import getPort, { allocate } from '${manifest.name}';`,
    `import { detectPort } from '${manifest.name}/detect-port';`,
    `import * as portfinder from '${manifest.name}/portfinder';`,
    'export const port: Promise<number> = getPort({ port: 3000 });',
    'export const ports: number[] = allocate(2);',
    'export const detected: Promise<number> = detectPort(3000);',
    'export const found: Promise<number> = portfinder.getPortPromise();',
    '// @ts-expect-error: a count is a number (so the types above are not `any`)',
    "allocate('2');",
  );
  return lines.join('\n') + '\n';
}

/**
 * The settings a user's tsconfig may have. The consumer is ESM (esm.ts, .mts: every entry) or
 * CommonJS (cjs.ts, .cts: no ESM-only entry), as .mts and .cts where the setting tells them apart.
 */
const settings: { name: string; options: Record<string, unknown>; files: string[]; runners?: boolean }[] = [
  { name: 'commonjs (node10)', options: { module: 'commonjs' }, files: ['cjs.ts'] },
  { name: 'commonjs (node10) with esModuleInterop', options: { module: 'commonjs', esModuleInterop: true }, files: ['cjs.ts'] },
  { name: 'node16', options: { module: 'node16' }, files: ['consumer.mts', 'consumer.cts'] },
  { name: 'nodenext', options: { module: 'nodenext' }, files: ['consumer.mts', 'consumer.cts'] },
  { name: 'bundler', options: { module: 'esnext', moduleResolution: 'bundler' }, files: ['esm.ts'] },
  { name: 'node16, with the runner entries', options: { module: 'node16', target: 'es2022' }, files: ['runners.mts', 'runners.cts'], runners: true },
  { name: 'nodenext, with the runner entries', options: { module: 'nodenext', target: 'es2022' }, files: ['runners.mts', 'runners.cts'], runners: true },
  { name: 'bundler, with the runner entries', options: { module: 'esnext', moduleResolution: 'bundler', target: 'es2022' }, files: ['runners-esm.ts'], runners: true },
  // ts-node's ESM loader with a tsconfig of an older day.
  { name: 'esnext with node10 resolution', options: { module: 'esnext', moduleResolution: 'node10' }, files: ['esm.ts'] },
];

let work: string;
let all: Entry[];

beforeAll(async () => {
  if (once) return;
  all = await entries();
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-types-'));
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [{ filename }] = JSON.parse(out) as [{ filename: string }];
  const modules = path.join(work, 'node_modules');
  fs.mkdirSync(modules);
  execFileSync('tar', ['xzf', path.join(work, filename), '-C', modules]);
  fs.renameSync(path.join(modules, 'package'), path.join(modules, manifest.name));
  // The optional peers (vitest, @playwright/test), as a project that uses their entries has them.
  for (const peer of Object.keys(manifest.peerDependencies ?? {})) {
    fs.mkdirSync(path.dirname(path.join(modules, peer)), { recursive: true });
    fs.symlinkSync(path.join(root, 'node_modules', peer), path.join(modules, peer));
  }
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const core = all.filter((entry) => !entry.needsPeer);
  const esm = consumer(core);
  const cjs = consumer(core.filter((entry) => !entry.esmOnly));
  const runnersEsm = consumer(all);
  const runnersCjs = consumer(all.filter((entry) => !entry.esmOnly));
  const files = { 'esm.ts': esm, 'consumer.mts': esm, 'cjs.ts': cjs, 'consumer.cts': cjs, 'runners-esm.ts': runnersEsm, 'runners.mts': runnersEsm, 'runners.cts': runnersCjs };
  for (const [name, source] of Object.entries(files)) fs.writeFileSync(path.join(work, name), source);
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(once)('types of every exports entry, skipLibCheck off', () => {
  it('the consumers import every entry: ESM ones every entry, CommonJS ones all but the ESM-only ones', () => {
    const read = (name: string) => fs.readFileSync(path.join(work, name), 'utf8');
    for (const entry of all) {
      const imported = `from '${entry.specifier}'`;
      expect(read('runners-esm.ts')).toContain(imported);
      if (!entry.esmOnly) expect(read('runners.cts')).toContain(imported);
      if (!entry.needsPeer) expect(read('esm.ts')).toContain(imported);
      if (!entry.needsPeer && !entry.esmOnly) expect(read('cjs.ts')).toContain(imported);
    }
    expect(all.filter((entry) => !entry.needsPeer).length).toBeGreaterThanOrEqual(3);
  });

  it.each(settings)('type-check under $name', ({ options, files }) => {
    const config = `tsconfig.${files.join('-')}.${Object.values(options).join('-')}.json`;
    fs.writeFileSync(
      path.join(work, config),
      JSON.stringify({
        compilerOptions: {
          ...options,
          strict: true,
          noEmit: true,
          skipLibCheck: false,
          // A Node project has @types/node; the repository's copy serves.
          typeRoots: [path.join(root, 'node_modules', '@types')],
          types: ['node'],
        },
        files,
      }),
    );
    const result = spawnSync(process.execPath, [tsc, '-p', config], { cwd: work, encoding: 'utf8' });
    expect(result.stdout + result.stderr).toBe('');
    expect(result.status).toBe(0);
  });
});
