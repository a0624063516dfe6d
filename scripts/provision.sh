#!/usr/bin/env bash
# Installs the system packages the test suite needs, on Debian or Ubuntu, as root:
#   openssl (TLS fixtures), etcd-server and nats-server (discovery and planes), chromium (the
#   /docs UI test), tmux (the interactive-mode test), python3-zmq and python3-msgpack (real libzmq
#   for the ZMQ interop test), prometheus (promtool, which checks the /metrics exposition and the
#   Grafana dashboard's queries), kubernetes-client (kubectl, which builds deploy/kubernetes).
# `bash scripts/provision.sh --check` installs nothing: it lists what is missing and exits 1 if
# anything is. On another system, or without root, it names what is missing and how to get it.
# README's test command (`npm run check`, scripts/check.sh) and .ci/run both run this script.
set -euo pipefail

# "package: test that passes when it is installed"
checks=(
  "openssl:command -v openssl"
  "etcd-server:command -v etcd"
  "nats-server:command -v nats-server"
  "chromium:test -x /usr/bin/chromium"
  "tmux:command -v tmux"
  "python3-zmq:/usr/bin/python3 -c 'import zmq'"
  "python3-msgpack:/usr/bin/python3 -c 'import msgpack'"
  "prometheus:command -v promtool"
  "kubernetes-client:command -v kubectl"
)

missing() {
  local out=()
  for entry in "${checks[@]}"; do
    if ! bash -c "${entry#*:}" >/dev/null 2>&1; then out+=("${entry%%:*}"); fi
  done
  echo "${out[@]:-}"
}

need=$(missing)
if [ -z "$need" ]; then
  echo "provision: every system package the tests need is installed"
  exit 0
fi
if [ "${1:-}" = "--check" ]; then
  echo "provision: missing packages: $need" >&2
  exit 1
fi
if ! command -v apt-get >/dev/null; then
  cat >&2 <<MSG
provision: this is not a Debian/Ubuntu system (no apt-get), so nothing was installed.
The tests need these Debian packages (or your system's equivalents on PATH; Chromium at
/usr/bin/chromium, python3 with zmq and msgpack at /usr/bin/python3): $need
Install them, then run the command again.
MSG
  exit 1
fi
if [ "$(id -u)" != 0 ]; then
  cat >&2 <<MSG
provision: missing packages: $need
Installing them needs root. Run:
  sudo apt-get update && sudo apt-get install -y --no-install-recommends $need
then run the command again.
MSG
  exit 1
fi
echo "provision: installing $need"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $need >/dev/null
still=$(missing)
if [ -n "$still" ]; then
  echo "provision: still missing after apt-get install: $still" >&2
  exit 1
fi
echo "provision: installed $need"
