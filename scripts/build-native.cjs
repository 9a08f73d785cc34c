#!/usr/bin/env node
// `npm run build:native` (and so `npm test`): the addon, compiled again when
// any native source or binding.gyp is newer than build/Release/portalloc.node
// (node-gyp-build alone keeps a stale local build: it loads, so it is kept).
// With no local build, node-gyp-build decides (a prebuild, or a compile).
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const built = path.join(root, 'build', 'Release', 'portalloc.node');
const mtime = (file) => fs.statSync(file).mtimeMs;
const sources = [path.join(root, 'binding.gyp'), ...fs.readdirSync(path.join(root, 'native')).map((name) => path.join(root, 'native', name))];

const stale = fs.existsSync(built) && sources.some((source) => mtime(source) > mtime(built));
const [command, args] = stale
  ? // npm puts its own node-gyp on the PATH of scripts (and names it in npm_config_node_gyp).
    process.env.npm_config_node_gyp
    ? [process.execPath, [process.env.npm_config_node_gyp, 'build', '--loglevel=warn']]
    : ['node-gyp', ['build', '--loglevel=warn']]
  : [process.execPath, [require.resolve('node-gyp-build/bin.js')]];
if (stale) console.log('portalloc: native sources changed since build/Release/portalloc.node: compiling it again');
const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' });
process.exit(result.status ?? 1);
