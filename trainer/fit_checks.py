"""The checks `trainer fit` runs before it installs anything, and the decision they lead to.

Two benchmarks, both through the runtime's ONNX encoders (`evaluate`):

- the repository: each held-out description ranked against every mined code of the repository
  (the training codes stay in the pool, as they do in the user's index);
- the general check: the shipped pairs of `general_pairs.CHECK_FILE`, each description ranked
  against all of the check's codes.

A model's score on each is its MRR, through the cascade when the folder has a ranker (that is what
search uses) and the retriever alone otherwise. The candidate is installed only when it is better
than the current model on the repository and loses at most `tolerance` MRR on the general check;
``--force`` installs it anyway, and says which check it overrode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .benchmarks import Benchmark, CodeRow, Query
from .data import Pair
from .evaluate import Evaluation, evaluate


def repository_benchmark(held_out: Sequence[Pair], train: Sequence[Pair]) -> Benchmark:
    """Held-out descriptions as queries; the pool is every code of the repository, held-out first."""
    pairs = [*held_out, *train]
    queries = [Query(id=pair.id, text=pair.query, code_id=index) for index, pair in enumerate(held_out)]
    codebase = [CodeRow(id=index, code=pair.code, language=pair.language) for index, pair in enumerate(pairs)]
    return Benchmark(queries=queries, codebase=codebase, name="repository")


def general_benchmark(check: Sequence[Pair]) -> Benchmark:
    """The general check's pairs: each description against all of the check's codes."""
    queries = [Query(id=pair.id, text=pair.query, code_id=index) for index, pair in enumerate(check)]
    codebase = [CodeRow(id=index, code=pair.code, language=pair.language) for index, pair in enumerate(check)]
    return Benchmark(queries=queries, codebase=codebase, name="general")


@dataclass(frozen=True)
class ModelScores:
    """One model's evaluations on the two checks (the repository's is None when not measured)."""

    repository: Evaluation | None
    general: Evaluation

    @staticmethod
    def headline(evaluation: Evaluation) -> tuple[str, dict[str, float]]:
        """The row search uses: the cascade when there is one, else the retriever."""
        cascades = [name for name in evaluation.rows if name.startswith("cascade@")]
        name = cascades[0] if cascades else "retriever"
        return name, evaluation.rows[name]

    def mrr(self, check: str) -> float | None:
        evaluation = self.repository if check == "repository" else self.general
        return None if evaluation is None else self.headline(evaluation)[1]["mrr"]


def score_model(
    folder: Path,
    repository: Benchmark | None,
    general: Benchmark,
    rerank_depth: int,
    cache: Path,
    threads: int | None,
) -> ModelScores:
    """Evaluate one model folder on the repository (when given) and the general check."""
    depths = (rerank_depth,)
    return ModelScores(
        repository=None
        if repository is None
        else evaluate(repository, folder, rerank_depths=depths, cache_dir=cache, threads=threads),
        general=evaluate(general, folder, rerank_depths=depths, cache_dir=cache, threads=threads),
    )


@dataclass(frozen=True)
class Decision:
    """Whether to install the candidate, and the one line that says why."""

    install: bool
    reason: str
    failed: tuple[str, ...] = ()  # the checks the candidate failed: "repository", "general"


def decide(current: ModelScores, candidate: ModelScores, tolerance: float, force: bool) -> Decision:
    """Install when better on the repository and at most `tolerance` worse on the general check."""
    failures: list[tuple[str, str]] = []
    notes: list[str] = []
    now, new = current.mrr("repository"), candidate.mrr("repository")
    if now is None or new is None:
        failures.append(("repository", "the repository has too few pairs to measure"))
    elif new <= now:
        failures.append(
            (
                "repository",
                f"not better on the repository's held-out pairs: MRR {new:.3f} vs {now:.3f} ({new - now:+.3f})",
            )
        )
    else:
        notes.append(f"better on the repository (MRR {new:.3f} vs {now:.3f}, {new - now:+.3f})")
    general_now, general_new = current.mrr("general"), candidate.mrr("general")
    assert general_now is not None and general_new is not None
    change = general_new - general_now
    if change < -tolerance:
        failures.append(
            (
                "general",
                f"worse on the general check: MRR {general_new:.3f} vs {general_now:.3f} ({change:+.3f}; "
                f"at most -{tolerance:.2f} allowed)",
            )
        )
    else:
        notes.append(f"general check {change:+.3f} (at most -{tolerance:.2f} allowed)")
    failed = tuple(name for name, _ in failures)
    if not failures:
        return Decision(True, "installed: " + "; ".join(notes))
    why = "; ".join(text for _, text in failures)
    if force:
        return Decision(True, f"installed because of --force, although {why}", failed)
    return Decision(False, f"kept the current model: the candidate is {why}", failed)


def _metrics_row(name: str, evaluation: Evaluation | None) -> str:
    if evaluation is None:
        return f"{name:<26}{'not measured':>24}"
    row, metrics = ModelScores.headline(evaluation)
    label = f"{name} ({row})"
    return f"{label:<26}{metrics['mrr']:>8.3f}{metrics['recall@1']:>8.3f}{metrics['recall@10']:>8.3f}"


def before_after_table(current: ModelScores, candidate: ModelScores) -> str:
    """MRR, R@1 and R@10 of both models on both checks, with the sizes of the checks."""
    lines = []
    for check in ("repository", "general"):
        evaluations = [getattr(scores, check) for scores in (current, candidate)]
        sized = next((evaluation for evaluation in evaluations if evaluation is not None), None)
        size = f"{sized.queries} queries, pool of {sized.pool}" if sized is not None else "not measured"
        lines.append(f"{check} check: {size}")
        lines.append(f"{'model':<26}{'MRR':>8}{'R@1':>8}{'R@10':>8}")
        lines.append(_metrics_row("current", evaluations[0]))
        lines.append(_metrics_row("candidate", evaluations[1]))
    return "\n".join(lines)


def scores_json(scores: ModelScores) -> dict[str, Any]:
    """Both evaluations (sizes and rows), for the model card, the fit report and `--resume`."""

    def one(evaluation: Evaluation | None) -> dict[str, Any] | None:
        if evaluation is None:
            return None
        return {"queries": evaluation.queries, "pool": evaluation.pool, "rows": evaluation.rows}

    return {"repository": one(scores.repository), "general": one(scores.general)}


def scores_from_json(data: dict[str, Any]) -> ModelScores:
    """Undo `scores_json`."""

    def one(name: str, stored: dict[str, Any] | None) -> Evaluation | None:
        if stored is None:
            return None
        return Evaluation(name, int(stored["queries"]), int(stored["pool"]), rows=dict(stored["rows"]))

    general = one("general", data["general"])
    assert general is not None
    return ModelScores(repository=one("repository", data["repository"]), general=general)
