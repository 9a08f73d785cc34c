#!/usr/bin/env node
// Reads a valgrind memcheck log and fails when an error or a definite leak has
// a frame in portalloc's addon (Node and V8 have valgrind findings of their own,
// which are not ours to fix). Usage: node scripts/valgrind-report.cjs valgrind.log
'use strict';
const fs = require('node:fs');

const log = fs.readFileSync(process.argv[2], 'utf8');
const lines = log.split('\n').map((line) => line.replace(/^==\d+== ?/, ''));
const records = [];
let current = [];
for (const line of lines) {
  if (line.trim() === '') {
    if (current.length > 0) records.push(current);
    current = [];
  } else {
    current.push(line);
  }
}
if (current.length > 0) records.push(current);

const isFinding = (record) => /^(Invalid|Conditional jump|Use of uninitialised|Syscall param|Mismatched|Source and destination overlap|.*definitely lost|Invalid free)/.test(record[0]);
// Whose finding it is: the first frame that is not the allocator itself. A block
// Node allocates inside napi_create_external (called by portalloc) is Node's.
const OURS = /portalloc\.node|native\/\w+\.(cc|h)|portalloc::/;
const ALLOCATOR = /vgpreload|operator new|malloc|calloc|realloc|memalign/;
const ours = (record) => {
  const frames = record.filter((line) => /^\s+(at|by) 0x/.test(line));
  const first = frames.find((line) => !ALLOCATOR.test(line));
  return first !== undefined && OURS.test(first);
};
const findings = records.filter(isFinding);
const mine = findings.filter(ours);
const summary = lines.filter((line) => /ERROR SUMMARY|definitely lost:|indirectly lost:/.test(line));
console.log(summary.join('\n'));
console.log(`valgrind: ${findings.length} findings in the process, ${mine.length} with a frame in portalloc`);
for (const record of mine.slice(0, 10)) console.log(record.join('\n') + '\n');
if (!/ERROR SUMMARY/.test(log)) {
  console.log('valgrind: the log has no ERROR SUMMARY: the run did not finish');
  process.exitCode = 1;
} else if (mine.length > 0) {
  process.exitCode = 1;
}
