// The benchmark-only floor addon (binding.gyp beside this file), or undefined
// where it was not built (`npm run build:bench`).
const path = require('node:path');

try {
  module.exports = require(path.join(__dirname, 'build', 'Release', 'portalloc_bench.node'));
} catch {
  module.exports = undefined;
}
