#!/usr/bin/env bash
# `deno check main.ts` from a fresh DENO_DIR: an incremental check against a warm cache hits
# TS2589 on Zod's deep route types after an edit (reproduced three times in a row), while a cold
# check of the same code passes. A cold check takes ~5 s and needs no network (nodeModulesDir).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
DENO_DIR="$dir" ./node_modules/.bin/deno check main.ts
