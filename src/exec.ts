/**
 * `portalloc exec`: reserves ports shared, runs a command with them in its
 * environment and in its arguments ({port}) (and, with --fds, the sockets
 * themselves at fds 3..), keeps the holds until the command listens on every
 * port or exits, forwards signals, and exits with the command's status. With
 * --name, the first port is the name's (named.ts), owned while the command runs.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { backend, reserve, type Reservation } from './allocate';
import { sharedUnsupported } from './options';
import { spawnWithSockets } from './handoff';
import { firstUsable, nameKey, ownName, usable, type NameOwner } from './named';

export const EXEC_HELP = `Usage: portalloc exec [-n N] [--range A-B] [--host HOST] [--fds]
                      [--name NAME [--project DIR]] [--print] -- command [args...]

Reserves N ports (default 1) so that nothing else can take them, runs the
command with PORT (the first), PORTS (comma-separated) and PORT_0..PORT_<N-1>
in its environment, and keeps the ports held until the command listens on
every one of them (a server that sets SO_REUSEADDR, as Node's does, can listen
while they are held) or exits. In the command's arguments, {port} is the first
port, {port:I} the I-th (from 0) and {ports} all of them, comma-separated:
  portalloc exec -- vite --port {port}
With --fds the bound sockets themselves are passed at fds 3.. with LISTEN_FDS,
LISTEN_PID and LISTEN_FDNAMES (systemd's convention).

  --name NAME    the first port is NAME's in this project (portalloc --name
                 NAME), and this command owns the name while it runs: everyone
                 asking for NAME gets this port; a second owner is refused
  --project DIR  the project NAME belongs to (default: the nearest directory
                 up with a package.json or .git, or its monorepo's workspace root)
  --print        print http://localhost:PORT once the command listens on PORT

In a terminal (stdin a TTY) the command shares exec's terminal, as if run
directly: the terminal's signals (Ctrl-C, Ctrl-\\, Ctrl-Z, hang-up) reach it
once, from the terminal; exec forwards SIGTERM, SIGUSR1 and SIGUSR2. Elsewhere
(CI, scripts, test runners) the command runs in a process group of its own and
every signal sent to exec, or to exec's group, reaches it once, by way of exec.
The exit status is the command's (killed by a signal, exec dies of the same,
or exits 128+N for one that dumps core).`;

/** A usage mistake: the CLI prints one line and exits 2. */
export class ExecUsageError extends Error {
  readonly code = 'ERR_USAGE';
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];
/** What a terminal sends its foreground group: with a shared terminal the command gets them itself. */
const FROM_TERMINAL: NodeJS.Signals[] = ['SIGINT', 'SIGHUP', 'SIGQUIT'];
/** /proc/net/tcp costs milliseconds to read on a busy host: poll often at first, then seldom. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 500;

interface ExecArguments {
  count: number;
  range?: [number, number];
  host?: string;
  fds: boolean;
  name?: string;
  project?: string;
  print: boolean;
  help: boolean;
  command: string[];
}

function parsePort(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new ExecUsageError(`exec: ${what} must be a port number from 1 to 65535; got '${text}'`);
  return Number(text);
}

/** Options until `--` or the first word that is not an option; the rest is the command. */
export function parseExec(argv: string[]): ExecArguments {
  const parsed: ExecArguments = { count: 1, fds: false, print: false, help: false, command: [] };
  let i = 0;
  const value = (name: string): string => {
    const next = argv[++i];
    if (next === undefined) throw new ExecUsageError(`exec: ${name} needs a value`);
    // (`--name --print` is a forgotten value, not a name; `--name=-x` spells such a name out.)
    if (next.startsWith('-')) throw new ExecUsageError(`exec: ${name} needs a value; got the option '${next}' (write ${name}=${next} if that is the value)`);
    return next;
  };
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') {
      i++;
      break;
    }
    if (!arg.startsWith('-')) break;
    // --name=value and -nN as well as separate values.
    const [flag, inline] =
      arg.startsWith('--') && arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : /^-n\d/.test(arg) ? ['-n', arg.slice(2)] : [arg, undefined];
    const take = (name: string) => inline ?? value(name);
    if (flag === '-n' || flag === '--count') {
      const text = take(flag);
      if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new ExecUsageError(`exec: ${flag} must be a whole number from 1 to 65535; got '${text}'`);
      parsed.count = Number(text);
    } else if (flag === '--range') {
      const text = take(flag);
      const match = /^(\d+)-(\d+)$/.exec(text);
      if (!match) throw new ExecUsageError(`exec: --range must look like 8000-9000; got '${text}'`);
      parsed.range = [parsePort(match[1]!, '--range start'), parsePort(match[2]!, '--range end')];
      if (parsed.range[0] > parsed.range[1]) throw new ExecUsageError(`exec: --range start must not be above its end; got '${text}'`);
    } else if (flag === '--host') {
      parsed.host = take(flag);
    } else if (flag === '--fds') {
      parsed.fds = true;
    } else if (flag === '--name') {
      parsed.name = take(flag);
    } else if (flag === '--project') {
      parsed.project = take(flag);
    } else if (flag === '--print') {
      parsed.print = true;
    } else if (flag === '-h' || flag === '--help') {
      parsed.help = true;
    } else {
      throw new ExecUsageError(`exec: unknown option '${arg}' (options come before --, the command after it)`);
    }
  }
  parsed.command = argv.slice(i);
  if (!parsed.help && parsed.command.length === 0) throw new ExecUsageError('exec needs a command: portalloc exec -n 2 -- node server.js');
  if (parsed.project !== undefined && parsed.name === undefined) throw new ExecUsageError('exec: --project goes with --name: portalloc exec --name web --project . -- npm run dev');
  if (parsed.name !== undefined && parsed.fds) throw new ExecUsageError('exec: --name and --fds do not go together (a named port may be in TIME_WAIT, which no held socket can cover)');
  substitute(parsed.command, Array.from({ length: parsed.count }, (_, n) => n)); // a bad {port:I} is a usage error before anything runs
  return parsed;
}

/**
 * The command's arguments with `{port}`, `{port:I}` and `{ports}` replaced by
 * the ports; anything else in braces is left as it is.
 */
export function substitute(command: readonly string[], ports: readonly number[]): string[] {
  return command.map((arg) =>
    arg.replace(/\{port(?::(\d+))?\}|\{ports\}/g, (whole, index: string | undefined) => {
      if (whole === '{ports}') return ports.join(',');
      const i = index === undefined ? 0 : Number(index);
      if (i >= ports.length) throw new ExecUsageError(`exec: ${whole} names port ${i}, but there ${ports.length === 1 ? 'is 1 port' : `are ${ports.length} ports`} (-n ${i + 1} holds ${i + 1})`);
      return String(ports[i]);
    }),
  );
}

/** The TCP ports some socket of this network namespace listens on, from /proc. */
function listeningPorts(): Set<number> {
  const ports = new Set<number>();
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = fs.readFileSync(file, 'latin1');
    } catch {
      continue;
    }
    for (const line of text.split('\n')) {
      // "  0: 0100007F:1F90 00000000:0000 0A ..." : local address, remote, state (0A LISTEN)
      const fields = line.trim().split(/\s+/);
      if (fields[3] !== '0A') continue;
      const local = fields[1];
      if (local) ports.add(parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

/**
 * Calls `onAll` once every port has a listener (and `onFirst` once the first
 * one has), or stops when the returned function is called. A command that
 * listens and stops again between two polls is seen when it exits: harmless,
 * as the holds are shared.
 */
function whenListening(ports: readonly number[], onFirst: () => void, onAll: () => void): () => void {
  let timer: NodeJS.Timeout | undefined;
  let first = false;
  const poll = (wait: number) => {
    timer = setTimeout(() => {
      const listening = listeningPorts();
      if (!first && listening.has(ports[0]!)) {
        first = true;
        onFirst();
      }
      if (ports.every((port) => listening.has(port))) onAll();
      else poll(Math.min(wait * 2, POLL_MAX_MS));
    }, wait);
    timer.unref();
  };
  poll(POLL_FIRST_MS);
  return () => clearTimeout(timer);
}

/**
 * The name's port: the first usable candidate, held shared. One that a Node
 * server could listen on but a plain bind cannot take is in TIME_WAIT from
 * the last run: it is taken unheld (the default range is outside the
 * kernel's, so no connect() is given it meanwhile). One taken between the check and the hold is skipped.
 */
async function holdName(owner: NameOwner, host: string | undefined): Promise<{ port: number; hold?: Reservation }> {
  const skipped = new Set<number>();
  for (;;) {
    const port = await firstUsable(owner.named, (candidate) => skipped.has(candidate));
    try {
      return { port, hold: reserve(1, { shared: true, range: [port, port], host }) };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_PORTS_EXHAUSTED') throw error;
    }
    if (await usable(owner.named, port)) return { port };
    skipped.add(port);
  }
}

/** The command's ports, held (the name's first, when `owner` is given). */
async function holdPorts(parsed: ExecArguments, owner: NameOwner | undefined): Promise<{ ports: number[]; holds: Reservation[] }> {
  const named = owner ? await holdName(owner, parsed.host) : undefined;
  const holds = named?.hold ? [named.hold] : [];
  try {
    const rest = parsed.count - (named ? 1 : 0);
    if (rest > 0) holds.push(reserve(rest, { shared: true, range: parsed.range, host: parsed.host, exclude: named ? [named.port] : undefined }));
  } catch (error) {
    for (const hold of holds) hold.release();
    throw error;
  }
  const ports = holds.flatMap((hold) => hold.ports).filter((port) => port !== named?.port);
  return { ports: named ? [named.port, ...ports] : ports, holds };
}

/** Sends `signal` to the command's process group (it leads one: spawned detached). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  try {
    if (child.pid !== undefined) process.kill(-child.pid, signal);
  } catch {
    // The group is gone: the command has exited, its exit event is on its way.
  }
}

/**
 * Forwards signals to the command's group. The command does not share exec's
 * process group, so a signal to that group (a terminal's Ctrl-C) reaches it
 * only through here: once. A stop (Ctrl-Z) stops the command's group, then
 * exec; SIGCONT continues both.
 */
function forwardSignals(child: ChildProcess): () => void {
  const forward = (signal: NodeJS.Signals) => signalGroup(child, signal);
  const stop = () => {
    // SIGTSTP is discarded in a group with no parent in its session (the command's): SIGSTOP is not.
    signalGroup(child, 'SIGSTOP');
    process.kill(process.pid, 'SIGSTOP');
  };
  for (const signal of FORWARDED) process.on(signal, forward);
  process.on('SIGTSTP', stop);
  return () => {
    for (const signal of FORWARDED) process.off(signal, forward);
    process.off('SIGTSTP', stop);
  };
}

/**
 * With a shared terminal: the command is in exec's process group, the
 * terminal's foreground group, so what the terminal sends (Ctrl-C, Ctrl-\,
 * hang-up) reaches it directly and exec only outlives it (to release and
 * report); Ctrl-Z stops both, as any job. SIGTERM, SIGUSR1 and SIGUSR2, which
 * no terminal sends, are forwarded to the command.
 */
function shareTerminalSignals(child: ChildProcess): () => void {
  const forward = (signal: NodeJS.Signals) => {
    try {
      child.kill(signal);
    } catch {
      // It has exited: its exit event is on its way.
    }
  };
  const outlive = () => {};
  const forwarded: NodeJS.Signals[] = ['SIGTERM', 'SIGUSR1', 'SIGUSR2'];
  for (const signal of forwarded) process.on(signal, forward);
  for (const signal of FROM_TERMINAL) process.on(signal, outlive);
  return () => {
    for (const signal of forwarded) process.off(signal, forward);
    for (const signal of FROM_TERMINAL) process.off(signal, outlive);
  };
}

/**
 * Kills the command's group if exec dies without forwarding (SIGKILL, as
 * Playwright and `timeout -s KILL` send to exec's group, which the command is
 * no longer in): a shell in a session of its own reads a pipe only exec holds,
 * and at its end, unless exec said "done" first, kills the group, as the
 * SIGKILL would have had the command stayed in exec's group (with a shared
 * terminal, `group` false: the command alone, when exec alone is killed).
 * Returns the function that stands it down.
 */
function killWithExec(child: ChildProcess, group: boolean): () => void {
  if (child.pid === undefined) return () => {};
  const target = group ? `-${child.pid}` : String(child.pid);
  const watcher = spawn('/bin/sh', ['-c', 'read -r word; [ "$word" = done ] || kill -s KILL -- "$0" 2>/dev/null', target], { stdio: ['pipe', 'ignore', 'ignore'], detached: true });
  watcher.on('error', () => {}); // no /bin/sh: nothing watches, as before
  watcher.stdin!.on('error', () => {});
  watcher.unref();
  (watcher.stdin as unknown as { unref?(): void }).unref?.();
  return () => watcher.stdin!.end('done\n');
}

/** Whether the command should share exec's terminal: exec has one (a person at it, maybe with a redirect). */
function shareTerminal(): boolean {
  if (!process.stdin.isTTY && !process.stdout.isTTY && !process.stderr.isTTY) return false;
  try {
    fs.closeSync(fs.openSync('/dev/tty', 'r')); // a controlling terminal, not only a TTY fd
    return true;
  } catch {
    return false;
  }
}

/** The signal that killed the last command `runExec` ran, if one did. */
export let killedBy: NodeJS.Signals | undefined;

/** Runs `portalloc exec`; resolves with the exit status to use. */
export async function runExec(argv: string[], err = (line: string) => process.stderr.write(line + '\n')): Promise<number> {
  const parsed = parseExec(argv);
  if (parsed.help) {
    process.stdout.write(EXEC_HELP + '\n');
    return 0;
  }
  // exec's holds are shared: on the JS backend, say so before a name is owned (no abstract names off Linux).
  if (backend !== 'native') throw sharedUnsupported();
  const owner = parsed.name === undefined ? undefined : await ownName(nameKey(parsed.name, { project: parsed.project, range: parsed.range, host: parsed.host }));
  let held: { ports: number[]; holds: Reservation[] };
  try {
    held = await holdPorts(parsed, owner);
  } catch (error) {
    owner?.close();
    throw error;
  }
  const { ports, holds } = held;
  owner?.answer(ports[0]!);
  const release = () => {
    for (const hold of holds) hold.release();
  };
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(ports[0]), PORTS: ports.join(',') };
  ports.forEach((port, i) => (env[`PORT_${i}`] = String(port)));
  const [command, ...args] = substitute(parsed.command, ports) as [string, ...string[]];
  // In a terminal the command shares it (job control, /dev/tty, password prompts); elsewhere it
  // leads a process group (and session) of its own, so that a signal to exec's group does not
  // reach it twice (directly, then forwarded).
  const detached = !shareTerminal();
  let child: ChildProcess;
  try {
    child = parsed.fds ? spawnWithSockets(holds[0]!, command, args, { env, keep: true, detached }) : spawn(command, args, { env, stdio: 'inherit', detached });
  } catch (error) {
    release();
    owner?.close();
    throw error;
  }
  const stopWatching = whenListening(ports, () => parsed.print && process.stdout.write(`http://localhost:${ports[0]}\n`), release);
  const stopForwarding = detached ? forwardSignals(child) : shareTerminalSignals(child);
  const standDown = killWithExec(child, detached);
  return new Promise<number>((resolve) => {
    const done = (status: number) => {
      stopWatching();
      release();
      owner?.close();
      stopForwarding();
      standDown();
      resolve(status);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      err(`portalloc: exec: ${command}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`);
      done(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      // A command killed by a signal: 128 + its number, as shells report it (the CLI then dies of
      // the same signal: a shell stops its loop only for a child killed by SIGINT).
      if (signal) {
        killedBy = signal;
        return done(128 + (os.constants.signals[signal] ?? 0));
      }
      done(code ?? 1);
    });
  });
}
