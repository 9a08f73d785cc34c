/**
 * Who holds a port: read from /proc, for `portalloc check`. Linux only; a
 * process of another user shows only where this one may read its fds (root
 * sees all). TCP sockets that are bound but not listening (a portalloc hold,
 * say) are not listed in /proc/net/tcp, so they show as busy without a holder.
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

/** Processes that own any of the socket inodes, by scanning /proc/<pid>/fd. */
function owners(inodes: Set<string>): Map<string, { pid: number; command: string }> {
  const owned = new Map<string, { pid: number; command: string }>();
  if (inodes.size === 0) return owned;
  let pids: string[] = [];
  try {
    pids = fs.readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return owned;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue; // gone, or not ours to read
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = fs.readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      const match = /^socket:\[(\d+)\]$/.exec(target);
      if (!match || !inodes.has(match[1]!) || owned.has(match[1]!)) continue;
      let command = '?';
      try {
        command = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ') || fs.readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
      } catch {
        // The process ended meanwhile.
      }
      owned.set(match[1]!, { pid: Number(pid), command });
    }
  }
  return owned;
}

/** Every socket on `port` that /proc shows, with its process where visible. */
export function holdersOf(port: number): Holder[] {
  const sockets = socketsOn(port);
  const owned = owners(new Set([...sockets.keys()].filter((inode) => !inode.startsWith('tw:'))));
  return [...sockets].map(([inode, socket]) => ({ ...socket, ...owned.get(inode) }));
}
