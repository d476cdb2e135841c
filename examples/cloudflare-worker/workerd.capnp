# Runs src/worker.js in plain workerd (npm install workerd inception-wasm, then
# `npx workerd serve workerd.capnp`): http://127.0.0.1:8787/
#
# Workers cannot compile WebAssembly from bytes at run time, so the package's .wasm files
# (inference, and the image decoders) are `wasm` modules here (a precompiled WebAssembly.Module, imported by the worker as
# 'inception-wasm/inception_wasm_bg.wasm'), and the package's ES module is listed under
# its import name. Paths are relative to this file.
using Workerd = import "/workerd/workerd.capnp";

const config :Workerd.Config = (
  services = [(name = "main", worker = .worker)],
  sockets = [(name = "http", address = "127.0.0.1:8787", http = (), service = "main")],
);

const worker :Workerd.Worker = (
  modules = [
    (name = "worker.js", esModule = embed "src/worker.js"),
    (name = "inception-wasm", esModule = embed "node_modules/inception-wasm/dist/index.js"),
    (name = "inception-wasm/inception_wasm_bg.wasm", wasm = embed "node_modules/inception-wasm/dist/wasm/inception_wasm_bg.wasm"),
    (name = "inception-wasm/inception_image_bg.wasm", wasm = embed "node_modules/inception-wasm/dist/wasm-image/inception_image_bg.wasm"),
  ],
  compatibilityDate = "2025-09-01",
);
