#!/usr/bin/env node
// Before `npm publish`: the tarball must carry a prebuilt addon for each
// platform below, compiled from the sources it ships, or users there without
// a compiler get the slower JS backend. Fails unless each prebuilds/<target>/
// has a .node file newer than every native source and binding.gyp, built for
// its machine (the ELF header says), and, for this machine's own target, one
// that loads. Fix: npm run prebuilds (on x64 Linux, with Debian's
// g++-aarch64-linux-gnu for arm64: scripts/arm64-check.sh installs it).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

/** The prebuilds a release carries, and each one's ELF e_machine. */
const targets = [
  { platform: 'linux', arch: 'x64', machine: 62 }, // EM_X86_64
  { platform: 'linux', arch: 'arm64', machine: 183 }, // EM_AARCH64
];

const root = path.join(__dirname, '..');
const fail = (why) => {
  console.error(`check-prebuilds: ${why}; run \`npm run prebuilds\` first`);
  process.exit(1);
};

/** The e_machine of an ELF file, or undefined when it is not one. */
function elfMachine(file) {
  const header = Buffer.alloc(20);
  const fd = fs.openSync(file, 'r');
  fs.readSync(fd, header, 0, header.length, 0);
  fs.closeSync(fd);
  if (header.readUInt32BE(0) !== 0x7f454c46) return undefined;
  return header[5] === 1 ? header.readUInt16LE(18) : header.readUInt16BE(18);
}

const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(path.join(root, 'native')).map((name) => path.join(root, 'native', name))];
const newestSource = Math.max(...sources.map((file) => fs.statSync(file).mtimeMs));
const checked = [];
for (const { platform, arch, machine } of targets) {
  const dir = path.join(root, 'prebuilds', `${platform}-${arch}`);
  const builds = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.node')) : [];
  if (builds.length === 0) fail(`no prebuilt addon in ${path.relative(root, dir)}/`);
  for (const name of builds) {
    const file = path.join(dir, name);
    const shown = path.relative(root, file);
    if (fs.statSync(file).mtimeMs < newestSource) fail(`${shown} is older than the native sources`);
    if (elfMachine(file) !== machine) fail(`${shown} is not built for ${arch} (ELF machine ${elfMachine(file)}, not ${machine})`);
    if (platform === process.platform && arch === process.arch) {
      try {
        process.dlopen({ exports: {} }, file);
      } catch (error) {
        fail(`${shown} does not load (${error.message.split('\n')[0]})`);
      }
    }
    checked.push(shown);
  }
}
console.log(`check-prebuilds: ${checked.join(', ')} ok`);
