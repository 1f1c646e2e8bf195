#!/usr/bin/env bash
# The trainer ablation (every loss and sampler of docs/TRAINING.md against BM25 and zero-shot), sized for a 2-core CPU: every retriever row trains for the same
# number of steps on the same corpus sample, is exported int8 and evaluated on the dev splits (selection)
# and the test splits (reporting); the rankers train on top of the retriever the dev splits pick.
#
#   bench/ablation.sh [WORK]        # default WORK: ~/.cache/codesieve-ablation
#
# Stages whose output exists are skipped and an interrupted training resumes from its checkpoint, so
# running the same command again continues. Two runs of it at once share the work: each stage is
# locked by the run doing it (on 2 cores, two runs with 1 torch thread each go fastest). Figures: WORK/evals/*.json; `python bench/ablation_table.py
# WORK` prints the table for docs/BENCHMARKS.md. Sizes can be changed through the environment (below).
set -euo pipefail
cd "$(dirname "$0")/.."
WORK=${1:-$HOME/.cache/codesieve-ablation}
PY=${PYTHON:-python}
CORPUS=${CORPUS:-$HOME/.cache/codesieve-corpus}
PAIRS=${PAIRS:-12000}          # corpus pairs sampled for every run
STEPS=${STEPS:-200}            # retriever optimiser steps
BATCH=${BATCH:-32}             # retriever queries per step
RANKER_STEPS=${RANKER_STEPS:-100}
RANKER_BATCH=${RANKER_BATCH:-8}
NEGATIVES=${NEGATIVES:-7}      # ranker: M negatives per query
HARD=${HARD:-1}                # retriever: k mined hard negatives per query
THREADS=${THREADS:-1}          # torch threads: 1 leaves a core for other work (2 threads slow down badly beside it)
TOKENS=(--max-query-tokens 32 --max-code-tokens 128 --threads "$THREADS")
mkdir -p "$WORK/evals"
trainer() { "$PY" -m codesieve.trainer.cli "$@"; }
log() { echo "[$(date +%H:%M:%S)] $*" >&2; }
# claim NAME: whether this run does stage NAME (no other run holds it); `release` when done
claim() { exec {stage_lock}>"$WORK/.$1.lock" && flock -n "$stage_lock"; }
release() { exec {stage_lock}>&-; }
# wait_for FILE...: until another run has written them
wait_for() { for file in "$@"; do until [[ -s $file ]]; do sleep 20; done; done; }

if [[ ! -s $WORK/pairs.jsonl ]]; then
  [[ -s $CORPUS/pairs.jsonl ]] || "$PY" -m codesieve.trainer.corpus build --manifest data/corpus/manifest.json --out "$CORPUS"
  "$PY" -c "import random, sys; rows = open(sys.argv[1]).readlines(); random.Random(0).shuffle(rows)
open(sys.argv[2], 'w').writelines(rows[:int(sys.argv[3])])" "$CORPUS/pairs.jsonl" "$WORK/pairs.jsonl.tmp" "$PAIRS"
  mv "$WORK/pairs.jsonl.tmp" "$WORK/pairs.jsonl"
fi

# evaluate NAME MODEL_DIR SETS... [-- EVAL ARGS]: one JSON per set under evals/
evaluate() {
  local name=$1 model=$2 set extra=()
  shift 2
  local sets=()
  while (($#)) && [[ $1 != -- ]]; do sets+=("$1"); shift; done
  (($#)) && { shift; extra=("$@"); }
  for set in "${sets[@]}"; do
    local out=$WORK/evals/$name-${set/\//-}.json
    [[ -s $out ]] && continue
    log "eval $name on $set"
    trainer eval --benchmark "$set" --model "$model" --json "$out.tmp" --threads "$THREADS" "${extra[@]}" >&2
    mv "$out.tmp" "$out"
  done
}

# retriever NAME TRAIN ARGS...: train, export, evaluate on dev and test
retriever() {
  local name=$1
  shift
  [[ -s $WORK/evals/$name-csn_ruby-test.json ]] && return
  claim "$name" || { log "$name: another run has it"; return; }
  if [[ ! -s $WORK/$name/model/config.json ]]; then
    log "train retriever $name: $*"
    local resume=()
    [[ -d $WORK/$name/checkpoint ]] && resume=(--resume)
    trainer train retriever "${resume[@]}" --pairs "$WORK/pairs.jsonl" --out "$WORK/$name" --max-steps "$STEPS" \
      --batch-size "$BATCH" "${TOKENS[@]}" --checkpoint-every 50 "$@"
  fi
  [[ -s $WORK/$name-model/model-card.json ]] || trainer export "$WORK/$name" --out "$WORK/$name-model" --name "ablation-$name"
  evaluate "$name" "$WORK/$name-model" cosqa/dev csn_ruby/valid cosqa/test csn_ruby/test
  release
}

retriever infonce
retriever hardneg --hard-negatives "$HARD"
retriever soft-bm25 --loss softinfonce --estimator bm25
retriever soft-base --loss softinfonce --estimator base
retriever oasis --loss oasis --teacher base
wait_for "$WORK/infonce/model/config.json"
retriever soft-trained --loss softinfonce --estimator trained --estimator-model "$WORK/infonce/model"
RETRIEVERS=(infonce hardneg soft-bm25 soft-base soft-trained oasis)
for name in "${RETRIEVERS[@]}"; do wait_for "$WORK/evals/$name-cosqa-dev.json" "$WORK/evals/$name-csn_ruby-valid.json"; done

# pick NAME... -- ROW: the run with the best mean MRR of ROW over the two dev splits
pick() {
  "$PY" - "$WORK" "$@" <<'EOF'
import json, sys
from pathlib import Path
work, names, row = Path(sys.argv[1]), sys.argv[2:-2], sys.argv[-1]
def dev(name):
    files = [work / "evals" / f"{name}-{split}.json" for split in ("cosqa-dev", "csn_ruby-valid")]
    return sum(next(iter(json.loads(f.read_text()).values()))[row]["mrr"] for f in files) / 2
print(max(names, key=dev))
EOF
}

# The ranker builds on the retriever with the best mean MRR over the two dev splits.
best=$(pick "${RETRIEVERS[@]}" -- retriever)
log "best retriever on dev: $best"
echo "$best" >"$WORK/best-retriever"

# ranker NAME NEGATIVES: train on top of the best retriever, export the pair, evaluate the cascade
ranker() {
  local name=$1 negatives=$2
  shift 2
  [[ -s $WORK/evals/$name-csn_ruby-test.json ]] && return
  claim "$name" || { log "$name: another run has it"; return; }
  if [[ ! -s $WORK/$name/model/config.json ]]; then
    log "train ranker $name ($negatives negatives) on $best"
    local resume=()
    [[ -d $WORK/$name/checkpoint ]] && resume=(--resume)
    trainer train ranker "${resume[@]}" --pairs "$WORK/pairs.jsonl" --out "$WORK/$name" --retriever "$WORK/$best/model" \
      --negatives "$negatives" --num-negatives "$NEGATIVES" --batch-size "$RANKER_BATCH" --max-steps "$RANKER_STEPS" \
      "${TOKENS[@]}" --checkpoint-every 25
  fi
  [[ -s $WORK/$name-model/model-card.json ]] || trainer export "$WORK/$best" --ranker "$WORK/$name" --out "$WORK/$name-model" --name "ablation-$best-$name"
  evaluate "$name" "$WORK/$name-model" cosqa/dev csn_ruby/valid cosqa/test csn_ruby/test -- --rerank-depth 10
  release
}

ranker ranker-ranking ranking
ranker ranker-inbatch inbatch
for name in ranker-ranking ranker-inbatch; do wait_for "$WORK/evals/$name-cosqa-dev.json" "$WORK/evals/$name-csn_ruby-valid.json"; done
# the cascade at several depths, for the ranker the dev splits pick
ranker=$(pick ranker-inbatch ranker-ranking -- cascade@10)
log "best ranker on dev: $ranker"
if claim depths; then
  evaluate depths "$WORK/$ranker-model" cosqa/test -- --rerank-depth 5 10 20 50
  evaluate depths "$WORK/$ranker-model" csn_ruby/test -- --rerank-depth 5 10 20  # K=50: 63,000 pairs, too slow here
  release
fi
log "done: python bench/ablation_table.py $WORK"
