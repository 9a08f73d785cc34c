/**
 * `portalloc exec`: reserves ports shared, runs a command with them in its
 * environment (and, with --fds, the sockets themselves at fds 3..), keeps the
 * holds until the command listens on every port or exits, forwards signals,
 * and exits with the command's status.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import { reserve, type Reservation } from './allocate';
import { spawnWithSockets } from './handoff';

export const EXEC_HELP = `Usage: portalloc exec [-n N] [--range A-B] [--host HOST] [--fds] -- command [args...]

Reserves N ports (default 1) so that nothing else can take them, runs the
command with PORT (the first), PORTS (comma-separated) and PORT_0..PORT_<N-1>
in its environment, and keeps the ports held until the command listens on
every one of them (a server that sets SO_REUSEADDR, as Node's does, can listen
while they are held) or exits. With --fds the bound sockets themselves are
passed at fds 3.. with LISTEN_FDS, LISTEN_PID and LISTEN_FDNAMES (systemd's
convention). Signals are forwarded; the exit status is the command's.`;

/** A usage mistake: the CLI prints one line and exits 2. */
export class ExecUsageError extends Error {
  readonly code = 'ERR_USAGE';
}

const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR1', 'SIGUSR2', 'SIGWINCH'];
/** /proc/net/tcp costs milliseconds to read on a busy host: poll often at first, then seldom. */
const POLL_FIRST_MS = 20;
const POLL_MAX_MS = 500;

interface ExecArguments {
  count: number;
  range?: [number, number];
  host?: string;
  fds: boolean;
  help: boolean;
  command: string[];
}

function parsePort(text: string, what: string): number {
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > 65535) throw new ExecUsageError(`${what} must be a port number from 1 to 65535; got '${text}'`);
  return Number(text);
}

/** Options until `--` or the first word that is not an option; the rest is the command. */
export function parseExec(argv: string[]): ExecArguments {
  const parsed: ExecArguments = { count: 1, fds: false, help: false, command: [] };
  let i = 0;
  const value = (name: string): string => {
    const next = argv[++i];
    if (next === undefined) throw new ExecUsageError(`exec: ${name} needs a value`);
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
    } else if (flag === '-h' || flag === '--help') {
      parsed.help = true;
    } else {
      throw new ExecUsageError(`exec: unknown option '${arg}' (options come before --, the command after it)`);
    }
  }
  parsed.command = argv.slice(i);
  if (!parsed.help && parsed.command.length === 0) throw new ExecUsageError('exec needs a command: portalloc exec -n 2 -- node server.js');
  return parsed;
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
 * Releases the hold once every port has a listener, or when the returned
 * function is called. A command that listens and stops again between two
 * polls keeps the hold until it exits: harmless, as the holds are shared.
 */
function releaseWhenListening(hold: Reservation): () => void {
  let timer: NodeJS.Timeout | undefined;
  const stop = () => {
    clearTimeout(timer);
    hold.release();
  };
  const poll = (wait: number) => {
    timer = setTimeout(() => {
      const listening = listeningPorts();
      if (hold.ports.every((port) => listening.has(port))) stop();
      else poll(Math.min(wait * 2, POLL_MAX_MS));
    }, wait);
    timer.unref();
  };
  poll(POLL_FIRST_MS);
  return stop;
}

/** Runs `portalloc exec`; resolves with the exit status to use. */
export async function runExec(argv: string[], err = (line: string) => process.stderr.write(line + '\n')): Promise<number> {
  const parsed = parseExec(argv);
  if (parsed.help) {
    process.stdout.write(EXEC_HELP + '\n');
    return 0;
  }
  const hold = reserve(parsed.count, { shared: true, range: parsed.range, host: parsed.host });
  const env: NodeJS.ProcessEnv = { ...process.env, PORT: String(hold.ports[0]), PORTS: hold.ports.join(',') };
  hold.ports.forEach((port, i) => (env[`PORT_${i}`] = String(port)));
  const [command, ...args] = parsed.command as [string, ...string[]];
  let child: ChildProcess;
  try {
    child = parsed.fds ? spawnWithSockets(hold, command, args, { env, keep: true }) : spawn(command, args, { env, stdio: 'inherit' });
  } catch (error) {
    hold.release();
    throw error;
  }
  const stop = releaseWhenListening(hold);
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of FORWARDED) process.on(signal, forward);
  return new Promise<number>((resolve) => {
    const done = (status: number) => {
      stop();
      for (const signal of FORWARDED) process.off(signal, forward);
      resolve(status);
    };
    child.once('error', (error: NodeJS.ErrnoException) => {
      err(`portalloc: exec: ${command}: ${error.code === 'ENOENT' ? 'command not found' : error.message}`);
      done(error.code === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      // A command killed by a signal: 128 + its number, as shells report it.
      if (signal) return done(128 + (os.constants.signals[signal] ?? 0));
      done(code ?? 1);
    });
  });
}
