{
  "targets": [
    {
      "target_name": "netstack_tun",
      "sources": ["src/link/native/tun.c"],
      "defines": ["NAPI_VERSION=8"],
      "cflags": ["-Wall", "-Wextra", "-Wno-unused-parameter", "-O2"]
    }
  ]
}
