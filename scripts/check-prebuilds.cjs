#!/usr/bin/env node
// Before `npm publish`: the tarball must carry a prebuilt addon compiled from the
// sources it ships, or users without a compiler get the slower JS backend.
// Fails unless prebuilds/<platform>-<arch>/ has a .node file newer than every
// native source and binding.gyp, and that file loads. Fix: npm run prebuilds.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const dir = path.join(root, 'prebuilds', `${process.platform}-${process.arch}`);
const fail = (why) => {
  console.error(`check-prebuilds: ${why}; run \`npm run prebuilds\` first`);
  process.exit(1);
};

const builds = fs.existsSync(dir) ? fs.readdirSync(dir).filter((name) => name.endsWith('.node')) : [];
if (builds.length === 0) fail(`no prebuilt addon in ${path.relative(root, dir)}/`);
const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(path.join(root, 'native')).map((name) => path.join(root, 'native', name))];
const newestSource = Math.max(...sources.map((file) => fs.statSync(file).mtimeMs));
for (const name of builds) {
  const file = path.join(dir, name);
  if (fs.statSync(file).mtimeMs < newestSource) fail(`${path.relative(root, file)} is older than the native sources`);
  try {
    process.dlopen({ exports: {} }, file);
  } catch (error) {
    fail(`${path.relative(root, file)} does not load (${error.message.split('\n')[0]})`);
  }
}
console.log(`check-prebuilds: ${builds.map((name) => path.join(path.relative(root, dir), name)).join(', ')} ok`);
