"""Average a fine-tuned retriever's weights with its base model's (WiSE-FT, Wortsman et al., CVPR 2022).

    θ = α · θ_fine-tuned + (1 − α) · θ_base

Fine-tuning on docstring pairs pulls the model towards docstring-like queries; the base model was
trained on a billion sentence pairs of many styles (web questions among them). Interpolating the two
weight sets keeps part of both: the fine-tuned gain on docstring-style queries and the base model's
robustness on others (CoSQA's web queries). No training, so α is cheap to choose on the dev splits.
"""

from __future__ import annotations

import json
from pathlib import Path

from .checkpoints import CONFIG_FILE, MODEL, load_retriever, save_weights
from .models import base_model_dir


def average_with_base(model_dir: Path, alpha: float, out: Path, base_dir: Path | None = None) -> Path:
    """Write `out/model/`: the retriever in `model_dir` averaged with its base weights (α on the
    fine-tuned side). The base is `base_dir`, else the run's own base model, else all-MiniLM-L6-v2."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must lie in [0, 1] (1 keeps the fine-tuned weights), not {alpha}")
    info_path = model_dir / CONFIG_FILE
    info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.is_file() else {}
    base = base_dir or Path(info.get("config", {}).get("base_model") or base_model_dir())
    tuned = load_retriever(model_dir)
    base_state = load_retriever(base).state_dict()
    averaged = {}
    for name, weight in tuned.state_dict().items():
        if name not in base_state or base_state[name].shape != weight.shape:
            raise ValueError(f"{model_dir} and {base} differ in {name}: not the same architecture")
        averaged[name] = (
            alpha * weight + (1 - alpha) * base_state[name] if weight.is_floating_point() else weight
        )
    tuned.load_state_dict(averaged)
    info["averaged"] = {"alpha": alpha, "base": str(base), "method": "WiSE-FT weight interpolation"}
    save_weights(out / MODEL, tuned, model_dir / "tokenizer.json", info)
    return out / MODEL
