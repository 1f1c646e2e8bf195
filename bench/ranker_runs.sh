#!/usr/bin/env bash
# The ranker runs (docs/BENCHMARKS.md, "The cascade for every user"), one command each, resumable: a run
# whose checkpoint exists continues with `--resume` (its stored config), so a run cut short by the end
# of a session goes on where it stopped. One torch thread a run: the long run gets a core to itself.
# After training, the ranker is exported onto a copy of the shipped model folder and scored through the
# runtime on the dev splits (`bench/rerank_fusion.py` chooses K and the fusion weight there).
#
#   RUNS="p3 p2" bash bench/ranker_runs.sh     # the two pilots, one a shell, side by side
#   RUNS=long bash bench/ranker_runs.sh        # the long run (run it again to resume)
#   EXPORT=0 RUNS=long bash bench/ranker_runs.sh   # train only
#
# Needs the corpus: python -m codesieve.trainer.corpus build --manifest data/corpus/manifest.json --out ~/.cache/codesieve-corpus
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-$HOME/.cache/codesieve-corpus}
W=${W:-$HOME/.cache/codesieve-ranker}
mkdir -p "$W"

# The samples: every docstring pair in a seeded shuffle (the long run reads 40,000 of them in 5,000
# steps of 8), and its first 12,000 for the pilots.
python - "$CORPUS/pairs.jsonl" "$W" <<'EOF'
import json, random, sys
from pathlib import Path
rows = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines(keepends=True)
out = Path(sys.argv[2])
doc = [row for row in rows if json.loads(row).get("source", "docstring") == "docstring"]
random.Random(0).shuffle(doc)
for name, sample in {"doc-all": doc, "doc12k": doc[:12000]}.items():
    if not (out / f"{name}.jsonl").exists():
        (out / f"{name}.jsonl").write_text("".join(sample), encoding="utf-8")
EOF

DEFAULT=codesieve/models/default
# The recipe every run shares: the body of the shipped retriever (read back from its int8 ONNX) with
# a zero head at its own learning rate, codes as search indexes them (doc view), a distillation
# warm-up over the retriever's top candidates, then the listwise loss over negatives mixed from the
# retriever's ranking (after a margin of 10 ranks) and the batch.
COMMON=(--init "$DEFAULT" --retriever "$DEFAULT" --code-view doc --negatives mixed --skip-top 10
  --num-negatives 3 --ranking-negatives 1 --batch-size 8 --lr 1e-4 --head-lr 1e-3 --max-query-tokens 32
  --threads 1 --checkpoint-every 100 --dev cosqa/dev,csn_ruby/valid --dev-max-queries 300 --dev-depth 10)
declare -A ARGS=(
  # pilots: 25 minutes each (loading and ranking included), 3 layers against 2, the same pairs
  [p3]="--pairs $W/doc12k.jsonl --layers 3 --max-code-tokens 128 --distill-steps 100 --max-steps 2000 --time-limit 1500 --dev-every 1000"
  [p2]="--pairs $W/doc12k.jsonl --layers 2 --max-code-tokens 128 --distill-steps 100 --max-steps 2000 --time-limit 1500 --dev-every 1000"
  # the long run: 5,000 steps of 8 queries, a dev check every 500
  [long]="--pairs $W/doc-all.jsonl --layers ${LONG_LAYERS:-3} --max-code-tokens 128 --distill-steps 300 --max-steps 5000 --dev-every 500"
)
for run in ${RUNS:-p3 p2}; do
  if [ -e "$W/$run/checkpoint" ]; then
    trainer train ranker --resume --out "$W/$run"
  else
    # shellcheck disable=SC2086
    trainer train ranker "${COMMON[@]}" ${ARGS[$run]} --out "$W/$run"
  fi
  if [ "${EXPORT:-1}" = 1 ]; then
    trainer export --onto "$DEFAULT" --ranker "$W/$run" --out "$W/$run-model"
  fi
done
