#!/usr/bin/env bash
# Fashion-MNIST for the training commands (npm run train:fashion, bench/fashion_torch.py):
# Debian's dataset-fashion-mnist (idx files under /usr/share/datasets/fashion-mnist).
# Installed only when a training command runs, never by the library or the tests.
set -euo pipefail
if ! dpkg-query -W -f='${Status}' dataset-fashion-mnist 2>/dev/null | grep -q 'ok installed'; then
  printf '\033[1msetup:\033[0m apt-get install dataset-fashion-mnist (30 MB, for the training run)\n'
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >/dev/null
fi
