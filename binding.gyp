{
  "targets": [
    {
      "target_name": "portalloc",
      "sources": [
        "native/addon.cc",
        "native/batch.cc",
        "native/probe.cc",
        "native/hold.cc",
        "native/convert.cc",
        "native/allocate.cc",
        "native/claims.cc",
        "native/timewait.cc",
        "native/inspect.cc",
        "native/check.cc",
        "native/floor.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_DISABLE_CPP_EXCEPTIONS",
        "NODE_ADDON_API_DISABLE_DEPRECATED",
        "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
      ],
      "cflags_cc": ["-std=c++17", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wall", "-Wextra"],
      "cflags_cc!": ["-fno-rtti"],
      "xcode_settings": {
        "GCC_SYMBOLS_PRIVATE_EXTERN": "YES",
        "CLANG_CXX_LANGUAGE_STANDARD": "c++17",
        "OTHER_CPLUSPLUSFLAGS": ["-fvisibility=hidden"]
      }
    }
  ]
}
