#!/usr/bin/env bash
# The retriever runs behind the shipped model and its alternatives (docs/BENCHMARKS.md, "Training the way the runtime indexes"), one
# command each, resumable: a run that stopped continues with `--resume` (this script does so when the
# run's checkpoint exists). Each run is exported to int8 ONNX and scored on the dev splits through the
# runtime encoders. One torch thread a run; run two at once on two cores with `RUNS="a b"` in two shells.
#
#   bash bench/retriever_runs.sh                 # every run below, in order
#   RUNS="doc12k" bash bench/retriever_runs.sh   # just one
#
# Needs the corpus: python -m codesieve.trainer.corpus build --manifest data/corpus/manifest.json --out ~/.cache/codesieve-corpus
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS=${CORPUS:-$HOME/.cache/codesieve-corpus}
W=${W:-$HOME/.cache/codesieve-exp}
mkdir -p "$W"

# The samples: the pilot's seeded 12,000 docstring pairs (the same shuffle of the 51,714 docstring pairs as
# every earlier ablation row), that sample plus every test-name pair, and the whole corpus.
python - "$CORPUS/pairs.jsonl" "$W" <<'EOF'
import json, random, sys
from pathlib import Path
rows = Path(sys.argv[1]).read_text(encoding="utf-8").splitlines(keepends=True)
out = Path(sys.argv[2])
doc = [row for row in rows if json.loads(row).get("source", "docstring") == "docstring"]
tests = [row for row in rows if json.loads(row).get("source") == "test-name"]
random.Random(0).shuffle(doc)
with_tests = doc[:12000] + tests
random.Random(0).shuffle(with_tests)
everything = list(rows)
random.Random(0).shuffle(everything)
every_doc = [row for row in everything if json.loads(row).get("source", "docstring") == "docstring"]
# doc256: every docstring pair of the 256-package corpus (2026-12-01, pairs sha256 69ef5a96e581...); the
# samples above came from the 84-package corpus and stay as they were written
samples = {"doc12k": doc[:12000], "doc12k-tests": with_tests, "all-doc": every_doc}
if len(rows) == 89716:
    samples["doc256"] = every_doc
# doc12k-sections: the doc12k sample plus every documentation-section pair
# (python bench/doc_section_pairs.py --out ~/.cache/codesieve-exp/doc-sections.jsonl)
if (out / "doc-sections.jsonl").exists() and (out / "doc12k.jsonl").exists():
    with_sections = [
        line
        for name in ("doc12k", "doc-sections")
        for line in (out / f"{name}.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)
    ]
    random.Random(0).shuffle(with_sections)
    samples["doc12k-sections"] = with_sections
for name, sample in samples.items():
    path = out / f"{name}.jsonl"
    if not path.exists():
        path.write_text("".join(sample), encoding="utf-8")
EOF

COMMON=(--batch-size 32 --max-query-tokens 32 --max-code-tokens 128 --threads 1 --checkpoint-every 50)
declare -A ARGS=(
  [doc12k]="--pairs $W/doc12k.jsonl --code-view doc --freeze-layers=-1 --max-steps 200"
  [doc12k-tests]="--pairs $W/doc12k-tests.jsonl --sources docstring,test-name --code-view doc --freeze-layers=-1 --max-steps 200"
  # the long run continues the dev-chosen 200-step run over all docstring pairs, with a schedule of its own
  [long]="--pairs $W/all-doc.jsonl --init $W/${LONG_INIT:-doc12k}/model --code-view doc --freeze-layers=-1 --max-steps ${LONG_STEPS:-200}"
  [doc12k-sections]="--pairs $W/doc12k-sections.jsonl --sources docstring,doc-section --code-view doc --freeze-layers=-1 --max-steps 200"
  # ten times the shipped model's steps, from the base model, over every docstring pair of the 256-package corpus (0.76 epoch)
  [steps2000]="--pairs $W/doc256.jsonl --code-view doc --freeze-layers=-1 --max-steps 2000"
  # context and query anchor (BENCHMARKS "Training with the index's context"): codesieve-infonce-v2 (read back out of its ONNX graph) 500 steps more, on codes that carry the
  # line the index puts before them (path and qualified name); the second keeps its queries near the base
  # model's (query anchor: 10 x mean(1 - cos) to the frozen base's query embeddings)
  [ctx500]="--pairs $W/doc256.jsonl --init $W/shipped-torch --code-view doc --code-context path,name --freeze-layers=-1 --max-steps 500 --seed 1"
  [ctx500-anchor]="--pairs $W/doc256.jsonl --init $W/shipped-torch --code-view doc --code-context path,name --query-anchor 10 --freeze-layers=-1 --max-steps 500 --seed 1"
  # then 300 steps more from ctx500, reading 256 code tokens, with a lighter query anchor
  [ctx256-anchor3]="--pairs $W/doc256.jsonl --init $W/ctx500/model --code-view doc --code-context path,name --max-code-tokens 256 --query-anchor 3 --freeze-layers=-1 --max-steps 300 --seed 2"
  # and 300 steps more of the same from ctx256-anchor3
  [ctx256-more]="--pairs $W/doc256.jsonl --init $W/ctx256-anchor3/model --code-view doc --code-context path,name --max-code-tokens 256 --query-anchor 3 --freeze-layers=-1 --max-steps 300 --seed 3"
)
for run in ${RUNS:-doc12k doc12k-tests long}; do
  # The ctx500 runs start from codesieve-infonce-v2 as it shipped: steps2000's int8 export, read back into
  # torch (its folder is $W/steps2000-model once steps2000 has run; INFONCE_V2 may name another copy of it)
  if [[ $run == ctx500* ]] && [ ! -e "$W/shipped-torch" ]; then
    python -c 'import sys; from pathlib import Path; from codesieve.trainer.checkpoints import retriever_from_model_folder
from codesieve.trainer.models import save_model
model, tokenizer = retriever_from_model_folder(Path(sys.argv[2])); save_model(model, Path(sys.argv[1]), tokenizer)' \
      "$W/shipped-torch" "${INFONCE_V2:-$W/steps2000-model}"
  fi
  if [ -e "$W/$run/checkpoint" ]; then
    trainer train retriever --resume --out "$W/$run"
  else
    # shellcheck disable=SC2086
    trainer train retriever "${COMMON[@]}" ${ARGS[$run]} --out "$W/$run"
  fi
  # the runs from the shipped model start from its int8 weights: exported onto another grid (a zero point per channel)
  trainer export "$W/$run" --out "$W/$run-model" --name "$run" $([[ $run == ctx* ]] && echo --weight-type int8-asym)
  for set in cosqa/dev csn_ruby/valid; do
    trainer eval --benchmark "$set" --model "$W/$run-model" --threads 1
  done
done
