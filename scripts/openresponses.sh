#!/usr/bin/env bash
# Runs the public OpenResponses compliance suite (openresponses/openresponses,
# bin/compliance-test.ts) against Switchboard: a frontend on the runtime given (node, bun or
# deno; default node) and one simulated worker that answers from
# tests/fixtures/openresponses/script.json with Qwen3's tool-call format (hermes), on a copy of
# the fixture model whose chat template also renders images.
#
#   OPENRESPONSES_SUITE=/path/to/suite bash scripts/openresponses.sh [node|bun|deno] [suite flags]
#
# Nothing is downloaded here. The suite is third-party code and is not in this repository: place
# it at $OPENRESPONSES_SUITE first (default /work/openresponses-suite), with its dependencies
# installed and src/generated made by its own `kubb generate`. docs/openai-api.md, "OpenResponses
# compliance suite", says where its files come from. Extra flags go to the suite (for example
# --filter basic-response,tool-calling or --json). The exit code is the suite's.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
suite=${OPENRESPONSES_SUITE:-/work/openresponses-suite}
runtime=${1:-node}
[ $# -gt 0 ] && shift
if [ ! -f "$suite/bin/compliance-test.ts" ] || [ ! -d "$suite/src/generated/kubb/zod" ]; then
  echo "No OpenResponses suite at $suite (bin/compliance-test.ts and src/generated/kubb/zod)." >&2
  echo "Place it there first: docs/openai-api.md, \"OpenResponses compliance suite\"." >&2
  exit 2
fi
bun=$root/node_modules/.bin/bun
case $runtime in
  node) frontend=(node --import tsx main.ts) ;;
  bun) frontend=("$bun" main.ts) ;;
  deno) frontend=("$root/node_modules/.bin/deno" run -A main.ts) ;;
  *) echo "runtime must be node, bun or deno (got \"$runtime\")" >&2; exit 2 ;;
esac
port=${OPENRESPONSES_PORT:-8711}
model=Qwen/Qwen3-0.6B
work=$(mktemp -d "${TMPDIR:-/tmp}/switchboard-openresponses.XXXXXX")
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# The fixture model with a chat template that renders image parts (as Qwen's VL templates do),
# so that input_image reaches the worker instead of the text-only template's 400.
mkdir -p "$work/model"
for f in tokenizer.json config.json generation_config.json; do
  ln -s "$root/tests/fixtures/model/$f" "$work/model/$f"
done
node -e '
const fs = require("node:fs");
const [from, to] = process.argv.slice(1);
const cfg = JSON.parse(fs.readFileSync(from, "utf8"));
const guard = "message.content.startswith(\x27<tool_response>\x27) and message.content.endswith(\x27</tool_response>\x27)";
const user = "{{- \x27<|im_start|>\x27 + message.role + \x27\\n\x27 + message.content + \x27<|im_end|>\x27 + \x27\\n\x27 }}";
const parts = "{{- \x27<|im_start|>\x27 + message.role + \x27\\n\x27 }}{%- if message.content is string %}" +
  "{{- message.content }}{%- else %}{%- for p in message.content %}{%- if p.type == \x27image\x27 %}" +
  "{{- \x27<|vision_start|><|image_pad|><|vision_end|>\x27 }}{%- else %}{{- p.text }}{%- endif %}" +
  "{%- endfor %}{%- endif %}{{- \x27<|im_end|>\\n\x27 }}";
if (!cfg.chat_template.includes(guard) || !cfg.chat_template.includes(user)) {
  throw new Error("the fixture chat template changed: update scripts/openresponses.sh");
}
cfg.chat_template = cfg.chat_template.replace(guard, `(message.content is string and ${guard})`)
  .replace(user, parts);
fs.writeFileSync(to, JSON.stringify(cfg));
' tests/fixtures/model/tokenizer_config.json "$work/model/tokenizer_config.json"

export DYN_FILE_KV=$work/kv
"${frontend[@]}" --http-host 127.0.0.1 --http-port "$port" --discovery-backend file \
  >"$work/frontend.log" 2>&1 &
pids+=($!)
node --import tsx main.ts mocker --discovery-backend file --model-path "$work/model" \
  --model-name "$model" --speedup-ratio 100 --script tests/fixtures/openresponses/script.json \
  --dyn-tool-call-parser hermes >"$work/mocker.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 300); do
  curl -sf "http://127.0.0.1:$port/v1/models" 2>/dev/null | grep -q "\"$model\"" && break
  sleep 0.2
done
if ! curl -sf "http://127.0.0.1:$port/v1/models" | grep -q "\"$model\""; then
  echo "the model never appeared on the frontend; logs:" >&2
  tail -n 20 "$work/frontend.log" "$work/mocker.log" >&2
  exit 1
fi
echo "frontend: $runtime on :$port; suite: $suite"
cd "$suite"
"$bun" run bin/compliance-test.ts --base-url "http://127.0.0.1:$port/v1" --api-key unused \
  --model "$model" "$@"
