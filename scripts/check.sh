#!/usr/bin/env bash
# The whole gate from a fresh clone (after `npm ci`): system packages (scripts/provision.sh),
# etcd and NATS started for the run and stopped after it (scripts/services.sh; servers already
# listening on their ports are used as they are and left running), then `npm run ok`.
# `npm run check` runs it; so does .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "--- system packages"
bash scripts/provision.sh

echo "--- services"
bash scripts/services.sh start
trap 'bash scripts/services.sh stop' EXIT

echo "--- npm run ok"
npm run ok
