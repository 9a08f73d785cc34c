# BENCHMARK ONLY: the kernel's floor (native/floor.cc) as an addon of its own,
# built by `npm run build:bench`, never packed or loaded by the library.
{
  "targets": [
    {
      "target_name": "portalloc_bench",
      "sources": ["../../native/floor.cc", "../../native/probe.cc", "../../native/sockets.cc"],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_DISABLE_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-rtti"]
    }
  ]
}
