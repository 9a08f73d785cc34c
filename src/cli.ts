#!/usr/bin/env node
/**
 * The portalloc command: prints free ports, or checks ports.
 * Usage errors exit 2 with one line on stderr, never a stack trace.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import type { AllocateOptions, Protocol } from './options';

/**
 * The core, loaded when a command needs it (not when this module loads): a
 * bad PORTALLOC_* variable then fails inside main(), as one line, not as a
 * stack trace at require time.
 */
function core() {
  /* eslint-disable @typescript-eslint/no-require-imports */
  const { allocate, internalBinding, isFree } = require('./allocate') as typeof import('./allocate');
  const { holdersOf } = require('./holders') as typeof import('./holders');
  const { namedPort } = require('./named') as typeof import('./named');
  /* eslint-enable @typescript-eslint/no-require-imports */
  return { allocate, internalBinding, isFree, holdersOf, namedPort };
}

const HELP = `portalloc: free network ports, fast, in bulk, and without races

Usage:
  portalloc [count] [options]     print <count> free ports, one a line (default 1)
  portalloc check PORT...         exit 0 when every port is free, 1 otherwise,
                                  naming the process that holds each busy port
  portalloc --timewait [count]    print ports reserved by TIME_WAIT for 60 s: nothing
                                  else gets them, a server that sets SO_REUSEADDR can
                                  listen on them (ssh -D, Node, Go); no process stays
  portalloc --name NAME           print NAME's port in this project: the same on every
                                  run while it is free, the owner's while
                                  'portalloc exec --name NAME' runs
  portalloc exec [-n N] [--range A-B] [--fds] [--name NAME] [--print] -- command [args...]
                                  run a command with N held ports in PORT, PORTS and
                                  PORT_0.. and in its arguments ({port}, {port:1},
                                  {ports}); the holds last until it listens on each;
                                  its exit status (portalloc exec --help)

Options:
  --host HOST          the address the ports must be free on
                       (default: every local address, IPv4 and IPv6)
  --protocol P         tcp (default), udp, or both
  --range A-B          pick ports from A to B inclusive (default: the kernel's choice)
  --first              the lowest free ports of the range, in ascending order
                       (default range with --first: 1024-65535)
  --exclude LIST       ports never to print, comma-separated: 8080,8081
  --json               print a JSON array (allocate) or object (check)
  --timewait           reserve the printed ports by TIME_WAIT (loopback, TCP)
  --name NAME          a named port (with --range, --host, --project, --json)
  --project DIR        the project NAME belongs to (default: the nearest
                       directory up with a package.json or .git, or the
                       workspace root of its monorepo)
  -h, --help           show this help
  -v, --version        show the version

Examples:
  portalloc 5                                five free TCP ports
  portalloc --first --range 1080-65535       the first free port above 1080
  portalloc 3 --protocol both --json         three ports free for TCP and UDP, as JSON
  portalloc check 3000 8080                  is anything on 3000 or 8080, and who?
  ssh -D $(portalloc --timewait) host        a SOCKS port nothing else takes meanwhile
  portalloc exec -n 2 -- node server.js      server.js reads process.env.PORT_0, PORT_1
  portalloc exec --print -- vite --port {port}   a dev server on a held port
  portalloc exec --name web -- npm run dev   the same port every run of this checkout
`;

/** A mistake in the command line: exit 2, one line. `code` lets callers of main() branch on it. */
export class UsageError extends Error {
  readonly code = 'ERR_USAGE';
  constructor(message: string) {
    // One line, whatever the user typed: control characters in a quoted value are escaped.
    super(message.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1)));
  }
}

function version(): string {
  const manifest = JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string };
  return manifest.version;
}

function parsePort(text: string, what: string): number {
  if (!/^\d+$/.test(text)) throw new UsageError(`${what} must be a port number from 1 to 65535; got '${text}'`);
  const port = Number(text);
  if (port < 1 || port > 65535) throw new UsageError(`${what} must be a port number from 1 to 65535; got '${text}'`);
  return port;
}

function parseRange(text: string): [number, number] {
  const match = /^(\d+)-(\d+)$/.exec(text);
  if (!match) throw new UsageError(`--range must look like 8000-9000; got '${text}'`);
  const range: [number, number] = [parsePort(match[1]!, '--range start'), parsePort(match[2]!, '--range end')];
  if (range[0] > range[1]) throw new UsageError(`--range start must not be above its end; got '${text}'`);
  return range;
}

function parseExclude(text: string): number[] {
  const parts = text.split(',').map((part) => part.trim());
  if (parts.includes('')) throw new UsageError(`--exclude must be ports separated by commas, as 8080,8081; got '${text}'`);
  return parts.map((part) => parsePort(part, '--exclude'));
}

function parseProtocol(text: string): Protocol {
  if (text !== 'tcp' && text !== 'udp' && text !== 'both') throw new UsageError(`--protocol must be tcp, udp or both; got '${text}'`);
  return text;
}

function parse(argv: string[]) {
  try {
    return parseArgs({
      args: argv,
      allowPositionals: true,
      strict: true,
      options: {
        host: { type: 'string' },
        protocol: { type: 'string' },
        range: { type: 'string' },
        exclude: { type: 'string' },
        first: { type: 'boolean' },
        json: { type: 'boolean' },
        timewait: { type: 'boolean' },
        name: { type: 'string' },
        project: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
        version: { type: 'boolean', short: 'v' },
      },
    });
  } catch (error) {
    throw new UsageError((error as Error).message.split('\n')[0]!);
  }
}

function check(ports: number[], values: ReturnType<typeof parse>['values'], out: (line: string) => void): number {
  const { isFree, holdersOf, internalBinding } = core();
  const protocol = values.protocol === undefined ? 'tcp' : parseProtocol(values.protocol);
  const report: Record<string, { free: boolean; holders: ReturnType<typeof holdersOf> }> = {};
  let allFree = true;
  for (const port of ports) {
    const free = isFree(port, { host: values.host, protocol });
    const holders = free ? [] : holdersOf(port, internalBinding.socketPorts).filter((holder) => protocol === 'both' || holder.protocol === protocol);
    report[port] = { free, holders };
    allFree &&= free;
    if (values.json) continue;
    if (free) {
      out(`${port} free`);
    } else if (holders.length === 0) {
      out(`${port} busy (no process visible: another user's socket, or one this backend cannot inspect)`);
    } else {
      const who = holders.map((h) => (h.pid === undefined ? `${h.protocol} ${h.state}` : `${h.protocol} ${h.state} pid ${h.pid} ${h.command}`));
      out(`${port} busy: ${[...new Set(who)].join('; ')}`);
    }
  }
  if (values.json) out(JSON.stringify(report));
  return allFree ? 0 : 1;
}

/** `portalloc --name NAME`: the name's port (named.ts). Usage errors throw at once; the port comes later. */
function named(values: ReturnType<typeof parse>['values'], positionals: string[], out: (line: string) => void): Promise<number> {
  const name = values.name!;
  if (positionals.length > 0) throw new UsageError(`--name prints one port; got '${positionals.join(' ')}' as well`);
  const others = (['protocol', 'exclude', 'first', 'timewait'] as const).filter((option) => values[option] !== undefined);
  if (others.length > 0) throw new UsageError(`--name goes with --range, --host, --project and --json only; got --${others[0]}`);
  if (name === '') throw new UsageError("--name must not be empty; got ''");
  const options = { project: values.project, host: values.host, range: values.range === undefined ? undefined : parseRange(values.range) };
  return core()
    .namedPort(name, options)
    .then((port) => {
      out(values.json ? JSON.stringify(port) : String(port));
      return 0;
    });
}

/**
 * Runs the CLI; returns the exit status (a promise of it for `--name`, which
 * asks the name's owner).
 */
export function main(argv: string[], out = (line: string) => process.stdout.write(line + '\n')): number | Promise<number> {
  const { values, positionals } = parse(argv);
  if (values.help) {
    out(HELP.trimEnd());
    return 0;
  }
  if (values.version) {
    out(version());
    return 0;
  }
  if (positionals[0] === 'check') {
    if (positionals.length < 2) throw new UsageError('check needs at least one port: portalloc check 3000 8080');
    const others = (['range', 'exclude', 'first', 'timewait', 'name', 'project'] as const).filter((option) => values[option] !== undefined);
    if (others.length > 0) throw new UsageError(`check goes with --host, --protocol and --json only; got --${others[0]}`);
    return check(positionals.slice(1).map((text) => parsePort(text, 'check')), values, out);
  }
  if (values.name !== undefined) return named(values, positionals, out);
  if (values.project !== undefined) throw new UsageError('--project goes with --name: portalloc --name web --project .');
  if (positionals.length > 1) throw new UsageError(`expected at most one count; got '${positionals.join(' ')}'`);
  const countText = positionals[0] ?? '1';
  if (!/^\d+$/.test(countText) || Number(countText) < 1 || Number(countText) > 65535) {
    throw new UsageError(`count must be a whole number from 1 to 65535; got '${countText}' (see portalloc --help)`);
  }
  const options: AllocateOptions = {
    host: values.host,
    protocol: values.protocol === undefined ? undefined : parseProtocol(values.protocol),
    range: values.range === undefined ? (values.first ? [1024, 65535] : undefined) : parseRange(values.range),
    order: values.first ? 'ascending' : undefined,
    exclude: values.exclude === undefined ? undefined : parseExclude(values.exclude),
    reserve: values.timewait ? 'timewait' : undefined,
  };
  const ports = core().allocate(Number(countText), options);
  out(values.json ? JSON.stringify(ports) : ports.join('\n'));
  return 0;
}

/** Prints a known error in one line; returns the exit status (2 for usage), or rethrows a bug. */
function report(error: unknown): number {
  const usage = error instanceof UsageError || (error as { code?: unknown }).code === 'ERR_USAGE';
  const known = usage || typeof (error as { code?: unknown }).code === 'string';
  if (!known) throw error;
  const message = (error as Error).message.replace(/^portalloc: /, '');
  process.stderr.write(`portalloc: ${message}\n`);
  return usage || /^ERR_(INVALID|OUT_OF_RANGE|PORTALLOC_CONFIG)/.test((error as { code: string }).code) ? 2 : 1;
}

if (require.main === module) {
  if (process.argv[2] === 'exec') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    Promise.resolve()
      .then(() => (require('./exec') as typeof import('./exec')).runExec(process.argv.slice(3)))
      .then(
      (status) => {
        process.exitCode = status;
        // Die of the signal that killed the command, as a shell's caller expects (its own handlers
        // are gone); for one that dumps core, the status alone (Node's core is nobody's business).
        const signal = (require('./exec') as typeof import('./exec')).killedBy;
        const dumpsCore = ['SIGQUIT', 'SIGABRT', 'SIGSEGV', 'SIGBUS', 'SIGFPE', 'SIGILL', 'SIGTRAP', 'SIGSYS', 'SIGXCPU', 'SIGXFSZ'];
        if (signal && !dumpsCore.includes(signal)) process.kill(process.pid, signal);
      },
      (error: unknown) => (process.exitCode = report(error)),
    );
  } else {
    let status: number | Promise<number>;
    try {
      status = main(process.argv.slice(2));
    } catch (error) {
      status = report(error);
    }
    if (typeof status === 'number') process.exitCode = status;
    else status.then((code) => (process.exitCode = code), (error: unknown) => (process.exitCode = report(error)));
  }
}
