/**
 * Who holds a port: read from /proc, for `portalloc check`. Linux only; a
 * process of another user shows only where this one may read its fds (root
 * sees all). TCP sockets that are bound but not listening (a portalloc hold,
 * say) are not listed in /proc/net/tcp: with the native backend, such sockets
 * are found by duplicating them out of their process (pidfd_getfd), as root or
 * for this user's own processes.
 */
import fs from 'node:fs';

export interface Holder {
  protocol: 'tcp' | 'udp';
  /** The socket's state as /proc/net names it: LISTEN, ESTABLISHED, TIME_WAIT, ... */
  state: string;
  /** Undefined where no process can be seen owning the socket (TIME_WAIT has none). */
  pid?: number;
  command?: string;
}

const TCP_STATES = ['', 'ESTABLISHED', 'SYN_SENT', 'SYN_RECV', 'FIN_WAIT1', 'FIN_WAIT2', 'TIME_WAIT', 'CLOSE', 'CLOSE_WAIT', 'LAST_ACK', 'LISTEN', 'CLOSING'];

function readLines(file: string): string[] {
  try {
    return fs.readFileSync(file, 'utf8').split('\n').slice(1);
  } catch {
    return [];
  }
}

/** Sockets on `port` by inode, from /proc/net/{tcp,tcp6,udp,udp6}. */
function socketsOn(port: number): Map<string, Omit<Holder, 'pid' | 'command'>> {
  const found = new Map<string, Omit<Holder, 'pid' | 'command'>>();
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  for (const protocol of ['tcp', 'udp'] as const) {
    for (const file of [`/proc/net/${protocol}`, `/proc/net/${protocol}6`]) {
      for (const line of readLines(file)) {
        const fields = line.trim().split(/\s+/);
        if (fields.length < 10 || !fields[1]!.endsWith(hex)) continue;
        const state = protocol === 'udp' ? 'BOUND' : TCP_STATES[parseInt(fields[3]!, 16)] ?? fields[3]!;
        const inode = fields[9]!;
        found.set(inode === '0' ? `tw:${found.size}` : inode, { protocol, state });
      }
    }
  }
  return found;
}

function commandOf(pid: number): string {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return '?'; // the process ended meanwhile
  }
}

/** Every process's socket fds, by inode, read from /proc/<pid>/fd. */
function socketFds(): { pid: number; fd: number; inode: string }[] {
  const found: { pid: number; fd: number; inode: string }[] = [];
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return found;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      try {
        const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
        if (match) found.push({ pid: Number(pid), fd: Number(fd), inode: match[1]! });
      } catch {
        // closed meanwhile
      }
    }
  }
  return found;
}

/** The inodes of every socket that some /proc/net table lists. */
function listedInodes(): Set<string> {
  const inodes = new Set<string>();
  for (const file of ['tcp', 'tcp6', 'udp', 'udp6']) {
    for (const line of readLines(`/proc/net/${file}`)) {
      const inode = line.trim().split(/\s+/)[9];
      if (inode) inodes.add(inode);
    }
  }
  return inodes;
}

export type SocketPorts = (pid: number, fds: number[]) => { fd: number; port: number; protocol: 'tcp' | 'udp' }[];

/**
 * Every socket on `port` that /proc shows, with its process where visible;
 * with `socketPorts` (native), also bound sockets that no /proc/net table lists.
 */
export function holdersOf(port: number, socketPorts?: SocketPorts): Holder[] {
  const sockets = socketsOn(port);
  const fds = socketFds();
  const holders: Holder[] = [];
  const byInode = new Map(fds.map((entry) => [entry.inode, entry]));
  for (const [inode, socket] of sockets) {
    const owner = byInode.get(inode);
    holders.push(owner ? { ...socket, pid: owner.pid, command: commandOf(owner.pid) } : socket);
  }
  if (socketPorts) {
    const listed = listedInodes();
    const unlisted = new Map<number, number[]>();
    for (const entry of fds) {
      if (!listed.has(entry.inode)) unlisted.set(entry.pid, [...(unlisted.get(entry.pid) ?? []), entry.fd]);
    }
    for (const [pid, list] of unlisted) {
      for (const found of socketPorts(pid, list)) {
        if (found.port === port) holders.push({ protocol: found.protocol, state: 'BOUND', pid, command: commandOf(pid) });
      }
    }
  }
  return holders;
}
