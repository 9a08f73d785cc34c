{
  "variables": {
    "portalloc_defines": [
      "NAPI_VERSION=8",
      "NAPI_DISABLE_CPP_EXCEPTIONS",
      "NODE_ADDON_API_DISABLE_DEPRECATED",
      "NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS"
    ],
    "portalloc_cflags": ["-std=c++17", "-fvisibility=hidden", "-fno-exceptions", "-O2", "-Wall", "-Wextra"]
  },
  "targets": [
    {
      "target_name": "portalloc",
      "conditions": [
        [
          "OS=='linux'",
          {
            "sources": [
              "native/addon.cc",
              "native/api.cc",
              "native/batch.cc",
              "native/split.cc",
              "native/candidates.cc",
              "native/ledger.cc",
              "native/claims.cc",
              "native/probe.cc",
              "native/timewait.cc",
              "native/check.cc",
              "native/sockets.cc",
              "native/inspect.cc"
            ],
            "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
            "defines": ["<@(portalloc_defines)"],
            "cflags_cc": ["<@(portalloc_cflags)"],
            "cflags_cc!": ["-fno-rtti"]
          }
        ],
        # The native code is Linux's (socket options, abstract unix sockets,
        # pidfd): elsewhere nothing is built, and the JS backend serves.
        ["OS!='linux'", { "type": "none" }]
      ]
    }
  ]
}
