#!/usr/bin/env bash
# Starts or stops the etcd and nats-server the tests use, on 127.0.0.1 with their default ports
# (etcd 2379, NATS 4222, NATS websocket 4280), keeping their data under .tmp/services.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=.tmp/services
mkdir -p "$dir"

wait_port() {
  for _ in $(seq 1 100); do
    (echo >"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.1
  done
  echo "nothing listens on 127.0.0.1:$1" >&2
  return 1
}

start() {
  if ! (echo >/dev/tcp/127.0.0.1/2379) 2>/dev/null; then
    etcd --data-dir "$dir/etcd" --listen-client-urls http://127.0.0.1:2379 \
      --advertise-client-urls http://127.0.0.1:2379 --listen-peer-urls http://127.0.0.1:2380 \
      >"$dir/etcd.log" 2>&1 &
    echo $! >"$dir/etcd.pid"
  fi
  if ! (echo >/dev/tcp/127.0.0.1/4222) 2>/dev/null; then
    cat >"$dir/nats.conf" <<CONF
listen: 127.0.0.1:4222
jetstream { store_dir: "$PWD/$dir/jetstream" }
websocket { listen: "127.0.0.1:4280", no_tls: true }
CONF
    nats-server -c "$dir/nats.conf" >"$dir/nats.log" 2>&1 &
    echo $! >"$dir/nats.pid"
  fi
  wait_port 2379
  wait_port 4222
  wait_port 4280
  echo "etcd on 127.0.0.1:2379, nats on 127.0.0.1:4222 (websocket 4280)"
}

stop() {
  for name in etcd nats; do
    if [ -f "$dir/$name.pid" ]; then
      kill "$(cat "$dir/$name.pid")" 2>/dev/null || true
      rm -f "$dir/$name.pid"
    fi
  done
}

"${1:-start}"
