#!/usr/bin/env node
// npm's install step. The addon is Linux code (Linux socket options, abstract
// unix sockets, pidfd), and binding.gyp builds nothing on other systems.
// - Linux: node-gyp-build loads a prebuild (prebuilds/linux-x64, linux-arm64)
//   or, where none fits (musl, 32-bit ARM, ...), compiles the addon. A compile
//   that fails does not fail the install and prints one line, not the
//   compiler's errors: the JS backend serves, and says so when portalloc loads.
// - Any other system: nothing is built and nothing printed; the JS backend serves.
'use strict';
const { spawnSync } = require('node:child_process');
const path = require('node:path');

if (process.platform === 'linux') {
  const build = spawnSync(process.execPath, [require.resolve('node-gyp-build/bin.js')], {
    cwd: path.join(__dirname, '..'),
    encoding: 'utf8',
  });
  if (build.status === 0) {
    process.stdout.write(build.stdout);
    process.stderr.write(build.stderr);
  } else {
    const output = `${build.stdout}\n${build.stderr}`;
    const first = output.split('\n').find((line) => /ERR!|error/i.test(line) && !/^gyp ERR! (stack|System|command|cwd|node -v|node-gyp -v|not ok)/.test(line));
    const why = (first ?? `exit ${build.status ?? build.signal}`).replace(/^gyp ERR! /, '').trim().slice(0, 160);
    console.log(`portalloc: no prebuilt addon for linux-${process.arch}, and it could not be compiled here (${why}): the pure-JS backend will serve.`);
  }
}
