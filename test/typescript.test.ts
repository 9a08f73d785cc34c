/**
 * The published types under every TypeScript module setting a user may have,
 * with skipLibCheck off (so portalloc's own declarations are checked too):
 * `npm pack` the repository, unpack it as node_modules/portalloc of a fresh
 * project, and run tsc on a consumer that imports every entry of package.json
 * `exports` (entries added later included): a namespace import, every name
 * the module exports at runtime, and its default export.
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
  exports: Record<string, string | { require: string | { default: string } }>;
};
const tsc = path.join(root, 'node_modules', 'typescript', 'bin', 'tsc');

// About the package, not a backend: runs once, in the native project.
const once = process.env.PORTALLOC_BACKEND === 'js';

interface Entry {
  specifier: string;
  /** The names the CommonJS module exports at runtime, `default` aside. */
  names: string[];
  hasDefault: boolean;
}

/** Every code entry of `exports`, with what its CommonJS module exports at runtime. */
function entries(): Entry[] {
  return Object.entries(manifest.exports)
    .filter(([subpath]) => subpath !== './package.json')
    .map(([subpath, entry]) => {
      const cjs = typeof entry === 'string' ? entry : typeof entry.require === 'string' ? entry.require : entry.require.default;
      const exported = require(path.join(root, cjs)) as Record<string, unknown>;
      return {
        specifier: subpath === '.' ? manifest.name : `${manifest.name}/${subpath.slice(2)}`,
        names: Object.keys(exported).filter((name) => name !== 'default' && name !== '__esModule'),
        hasDefault: 'default' in exported,
      };
    });
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

/** The settings a user's tsconfig may have: the consumer runs as .ts, or as .mts and .cts where the setting tells them apart. */
const settings: { name: string; options: Record<string, unknown>; files: string[] }[] = [
  { name: 'commonjs (node10)', options: { module: 'commonjs' }, files: ['consumer.ts'] },
  { name: 'commonjs (node10) with esModuleInterop', options: { module: 'commonjs', esModuleInterop: true }, files: ['consumer.ts'] },
  { name: 'node16', options: { module: 'node16' }, files: ['consumer.mts', 'consumer.cts'] },
  { name: 'nodenext', options: { module: 'nodenext' }, files: ['consumer.mts', 'consumer.cts'] },
  { name: 'bundler', options: { module: 'esnext', moduleResolution: 'bundler' }, files: ['consumer.ts'] },
  // ts-node's ESM loader with a tsconfig of an older day.
  { name: 'esnext with node10 resolution', options: { module: 'esnext', moduleResolution: 'node10' }, files: ['consumer.ts'] },
];

let work: string;

beforeAll(() => {
  if (once) return;
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-types-'));
  const out = execFileSync('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  const [{ filename }] = JSON.parse(out) as [{ filename: string }];
  const modules = path.join(work, 'node_modules');
  fs.mkdirSync(modules);
  execFileSync('tar', ['xzf', path.join(work, filename), '-C', modules]);
  fs.renameSync(path.join(modules, 'package'), path.join(modules, manifest.name));
  fs.writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }));
  const source = consumer(entries());
  for (const file of ['consumer.ts', 'consumer.mts', 'consumer.cts']) fs.writeFileSync(path.join(work, file), source);
});

afterAll(() => {
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe.skipIf(once)('types of every exports entry, skipLibCheck off', () => {
  it('the consumer imports every entry', () => {
    const source = fs.readFileSync(path.join(work, 'consumer.ts'), 'utf8');
    for (const entry of entries()) expect(source).toContain(`from '${entry.specifier}'`);
    expect(entries().length).toBeGreaterThanOrEqual(3);
  });

  it.each(settings)('type-check under $name', ({ options, files }) => {
    const config = `tsconfig.${files.length}.${Object.values(options).join('-')}.json`;
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
