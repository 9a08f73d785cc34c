#!/bin/sh
# The addon under AddressSanitizer + UndefinedBehaviorSanitizer, or valgrind.
#
#   sh scripts/sanitize.sh build      compile build-sanitize/build/Release/portalloc.node
#   sh scripts/sanitize.sh stress     the stress (OPS, default 100,000) on that build
#   sh scripts/sanitize.sh valgrind   memcheck on an unsanitized -g build (build-valgrind/), a smaller stress (OPS, default 3,000)
#
# The sanitized build lives apart from build/ and prebuilds/: node-gyp-build
# loads it only when PORTALLOC_PREBUILD points at build-sanitize (as `stress` does).
# Node must start with libasan preloaded (the addon is loaded after Node's own
# malloc is in use); leak detection is off because Node itself does not free
# everything at exit: fd leaks are what the stress counts instead.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
out="$root/build-sanitize"
plain="$root/build-valgrind"
cmd=${1:-}

# compile DIR CXXFLAGS LDFLAGS: the addon built in DIR/build/Release from the repository's sources.
compile() {
  rm -rf "$1"
  mkdir -p "$1"
  ln -s ../binding.gyp "$1/binding.gyp"
  ln -s ../native "$1/native"
  (cd "$1" && CXXFLAGS="$2" CFLAGS="$2" LDFLAGS="$3" node_gyp rebuild >build.log 2>&1) || {
    tail -30 "$1/build.log"
    exit 1
  }
}

node_gyp() {
  # The installed Node's own headers, when it has them (no download needed).
  prefix=$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")
  if [ -z "${npm_config_nodedir:-}" ] && [ -f "$prefix/include/node/node_api.h" ]; then
    export npm_config_nodedir="$prefix"
  fi
  if command -v node-gyp >/dev/null 2>&1; then
    node-gyp "$@"
  else
    # npm ships node-gyp; `npm run` puts it on PATH, a plain shell may not.
    node "$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js" "$@"
  fi
}

case "$cmd" in
  build)
    compile "$out" "-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g -O1" "-fsanitize=address,undefined"
    if ! nm -D "$out/build/Release/portalloc.node" | grep -q __asan; then
      echo "sanitize: the build has no AddressSanitizer symbols (CXXFLAGS ignored?)" >&2
      exit 1
    fi
    echo "sanitize: built $out/build/Release/portalloc.node"
    ;;
  stress)
    [ -f "$out/build/Release/portalloc.node" ] || sh "$0" build
    asan=$(${CXX:-g++} -print-file-name=libasan.so)
    export LD_PRELOAD="$asan"
    export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:halt_on_error=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
    export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=1:print_stacktrace=1"
    export PORTALLOC_PREBUILD="$out" PORTALLOC_BACKEND=native
    export OPS="${OPS:-100000}"
    # A low fd limit (soft and hard: Node raises the soft one) so the EMFILE path runs;
    # a network namespace of its own where possible (root), so its thousands of held
    # ports do not disturb anything else running on the machine.
    if unshare -n true 2>/dev/null; then
      exec unshare -n sh -c 'ip link set lo up && exec "$@"' sh prlimit --nofile=2048:2048 node --expose-gc "$root/scripts/stress.cjs"
    fi
    exec prlimit --nofile=2048:2048 node --expose-gc "$root/scripts/stress.cjs"
    ;;
  valgrind)
    compile "$plain" "-g -O1 -fno-omit-frame-pointer" ""
    export PORTALLOC_PREBUILD="$plain" PORTALLOC_BACKEND=native OPS="${OPS:-3000}" WORKERS="${WORKERS:-1}"
    # Errors only in portalloc's own code fail the run: Node and V8 have their own valgrind noise.
    log="$plain/valgrind.log"
    prlimit --nofile=2048:2048 valgrind --tool=memcheck --error-exitcode=0 --leak-check=full --show-leak-kinds=definite \
      --trace-children=no --log-file="$log" node --expose-gc --jitless "$root/scripts/stress.cjs"
    node "$root/scripts/valgrind-report.cjs" "$log"
    ;;
  *)
    echo "usage: sh scripts/sanitize.sh build|stress|valgrind" >&2
    exit 2
    ;;
esac
