"""Training loops on a tiny random BERT: every loss runs, checkpoints resume, `trainer fit` installs a model."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from helpers import TESTS

from codesieve.export.onnx_export import weight_type_of
from codesieve.server.model.encoders import TokenEncoder
from codesieve.server.model.folder import ModelFolder
from codesieve.trainer.checkpoints import CHECKPOINT, CONFIG_FILE, load_ranker, load_retriever, load_state
from codesieve.trainer.cli import main
from codesieve.trainer.config import RankerConfig, RetrieverConfig
from codesieve.trainer.data import (
    Pair,
    bucketed_batches,
    embed,
    read_pairs,
    tokenize,
    workspace_path,
    write_pairs,
)
from codesieve.trainer.mining import mine_repository
from codesieve.trainer.models import load_model
from codesieve.trainer.ranker_dev import FUSION_WEIGHTS
from codesieve.trainer.train_ranker import (
    NEGATIVES_FILE,
    RetrieverRanking,
    candidates_of,
    train_ranker,
)
from codesieve.trainer.train_retriever import query_drift, train_retriever

DATA = TESTS / "data"


@pytest.fixture(scope="module")
def pairs_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    write_pairs(path, mine_repository(DATA / "minirepo").pairs)
    return path


def _retriever_config(pairs: Path, out: Path, base: Path, **changes: object) -> RetrieverConfig:
    config = RetrieverConfig(pairs=str(pairs), out=str(out), base_model=str(base), batch_size=4, threads=1)
    return replace(config, **changes)  # type: ignore[arg-type]


def _ranker_config(pairs: Path, out: Path, base: Path, **changes: object) -> RankerConfig:
    """A ranker run small enough for the tiny model: 3 queries a step, 2 negatives, dev depth 4."""
    config = RankerConfig(
        pairs=str(pairs),
        out=str(out),
        base_model=str(base),
        num_negatives=2,
        batch_size=3,
        threads=1,
        dev_depth=4,
    )
    return replace(config, **changes)  # type: ignore[arg-type]


def test_bucketed_batches_cover_every_example_once() -> None:
    lengths = [(index * 7) % 23 for index in range(101)]
    batches = bucketed_batches(lengths, 8, seed=1)
    assert sorted(index for batch in batches for index in batch) == list(range(101))
    assert bucketed_batches(lengths, 8, seed=1) == batches
    assert bucketed_batches(lengths, 8, seed=2) != batches


def test_resume_continues_from_the_checkpoint(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    train_retriever(_retriever_config(pairs_file, out, tiny_base_model, max_steps=1, hard_negatives=1))
    state = load_state(out)
    assert state is not None and state["step"] == 1
    assert state["config"]["hard_negatives"] == 1 and state["config"]["max_steps"] == 1
    saved = json.loads((out / CHECKPOINT / CONFIG_FILE).read_text())
    assert saved["config"]["pairs"] == str(pairs_file) and saved["step"] == 1
    negatives = torch.load(out / "hard-negatives.pt")

    result = train_retriever(
        _retriever_config(pairs_file, out, tiny_base_model, max_steps=2, hard_negatives=1), resume=True
    )
    state = load_state(out)
    assert state is not None and state["step"] == 2
    assert state["scheduler"]["last_epoch"] == 2
    assert torch.equal(torch.load(out / "hard-negatives.pt"), negatives)
    info = json.loads((result / CONFIG_FILE).read_text())
    assert info["step"] == 2 and info["kind"] == "retriever" and len(info["data"]["sha256"]) == 64
    assert load_model(result, "retriever") is not None


def test_training_stops_at_its_time_limit_with_a_usable_model(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bounded"
    retriever = train_retriever(
        _retriever_config(pairs_file, out, tiny_base_model, max_steps=50, time_limit=1e-6)
    )
    assert json.loads((retriever / CONFIG_FILE).read_text())["step"] == 0  # loading alone used the time
    assert load_model(retriever, "retriever") is not None
    assert "retriever: time limit reached at step 0 of 50" in capsys.readouterr().err
    ranker_config = RankerConfig(
        pairs=str(pairs_file),
        out=str(tmp_path / "ranker"),
        base_model=str(tiny_base_model),
        negatives="inbatch",
        batch_size=3,
        num_negatives=1,
        max_steps=50,
        threads=1,
        time_limit=1e-6,
    )
    assert json.loads((train_ranker(ranker_config) / CONFIG_FILE).read_text())["step"] == 0


def test_cli_resume_uses_the_stored_config(pairs_file: Path, tiny_base_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "cli-run"
    common = ["--base-model", str(tiny_base_model), "--out", str(out), "--threads", "1"]
    assert (
        main(
            [
                "train",
                "retriever",
                "--pairs",
                str(pairs_file),
                "--batch-size",
                "3",
                "--max-steps",
                "1",
                *common,
            ]
        )
        == 0
    )
    assert main(["train", "retriever", "--resume", "--max-steps", "2", "--out", str(out)]) == 0
    state = load_state(out)
    assert state is not None and state["step"] == 2 and state["config"]["batch_size"] == 3
    assert state["seconds"] > 0  # training time adds up across the resume

    # export records the recipe, its training time and the corpus the pairs came from
    report = tmp_path / "corpus-report.json"
    report.write_text(json.dumps({"manifest_sha256": "ab" * 32, "pairs": 9, "packages": [{"package": "x"}]}))
    model = tmp_path / "model"
    assert main(["export", str(out), "--out", str(model), "--name", "t", "--corpus-report", str(report)]) == 0
    training = json.loads((model / "model-card.json").read_text())["training"]
    assert training["corpus"] == {"manifest_sha256": "ab" * 32, "pairs": 9}
    recipe = training["retriever"]
    assert recipe["step"] == 2 and recipe["seconds"] >= round(state["seconds"], 1)


def test_train_and_export_print_no_library_noise_unless_verbose(
    pairs_file: Path,
    tiny_base_model: Path,
    tmp_path: Path,
    capfd: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    out = tmp_path / "run"
    train = ["train", "retriever", "--pairs", str(pairs_file), "--batch-size", "3", "--max-steps", "1"]
    assert main([*train, "--base-model", str(tiny_base_model), "--out", str(out), "--threads", "1"]) == 0
    assert main(["export", str(out), "--out", str(tmp_path / "model")]) == 0
    quiet, quiet_logs = capfd.readouterr().err, [record.getMessage() for record in caplog.records]
    for noise in ("LOAD REPORT", "Loading weights", "Warning", "WARNING"):
        assert noise not in quiet, quiet[-2000:]
    assert quiet_logs == []
    caplog.clear()
    assert main(["export", str(out), "--out", str(tmp_path / "again"), "--verbose"]) == 0
    assert caplog.records  # the exporter's and quantiser's own words are still there on request


def test_export_takes_asymmetric_weights_when_symmetric_int8_misses_parity_and_says_what_to_do_when_both_do(
    pairs_file: Path,
    tiny_base_model: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from codesieve.export.onnx_export import ParityError
    from codesieve.trainer import export_run as checkpoint

    out = tmp_path / "run"
    train_retriever(_retriever_config(pairs_file, out, tiny_base_model, max_steps=1))
    export, missing = checkpoint.export_checkpoint, {"int8"}

    def parity_missed_for(*args: object, weight_type: str = "int8", **kwargs: object) -> object:
        if weight_type in missing:
            raise ParityError(f"retriever.onnx against torch: {{'mean_cosine': 0.98}} ({weight_type})")
        return export(*args, weight_type=weight_type, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(checkpoint, "export_checkpoint", parity_missed_for)
    assert main(["export", str(out), "--out", str(tmp_path / "model")]) == 0
    assert (
        "asymmetric int8" in json.loads((tmp_path / "model" / "model-card.json").read_text())["quantization"]
    )
    assert weight_type_of(tmp_path / "model" / "retriever.onnx") == "int8-asym"
    assert "symmetric int8 weights missed the parity check" in capsys.readouterr().err
    missing.add("int8-asym")
    assert main(["export", str(out), "--out", str(tmp_path / "other")]) == 2
    said = capsys.readouterr().err
    assert "--no-quantize exports fp32" in said and "Traceback" not in said, said
    assert not (tmp_path / "other").exists()


@pytest.mark.parametrize(
    "changes",
    [
        {"loss": "softinfonce", "estimator": "bm25"},
        {"loss": "softinfonce", "estimator": "base"},
        {"loss": "oasis", "teacher": "base", "hard_negatives": 1},
    ],
    ids=["soft-bm25", "soft-base", "oasis-base"],
)
def test_losses_train(
    changes: dict[str, object], pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    result = train_retriever(
        _retriever_config(pairs_file, tmp_path / "run", tiny_base_model, max_steps=2, **changes)
    )
    assert json.loads((result / CONFIG_FILE).read_text())["config"]["loss"] == changes["loss"]


def test_trained_estimator_and_ranker_teacher_and_dev(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    first = train_retriever(_retriever_config(pairs_file, tmp_path / "infonce", tiny_base_model, max_steps=1))
    ranker = train_ranker(
        RankerConfig(
            pairs=str(pairs_file),
            out=str(tmp_path / "ranker"),
            base_model=str(tiny_base_model),
            retriever=str(first),
            num_negatives=2,
            batch_size=3,
            max_steps=2,
            threads=1,
            dev=str(pairs_file),
            dev_depth=4,
        )
    )
    info = json.loads((ranker / CONFIG_FILE).read_text())
    assert info["best"]["step"] == 2 and 0 < info["dev_history"][0]["mrr"] <= 1
    soft = _retriever_config(
        pairs_file,
        tmp_path / "soft",
        tiny_base_model,
        max_steps=1,
        loss="softinfonce",
        estimator="trained",
        estimator_model=str(first),
        dev=str(pairs_file),
    )
    assert json.loads((train_retriever(soft) / CONFIG_FILE).read_text())["dev_history"][0]["mrr"] > 0
    oasis = _retriever_config(
        pairs_file,
        tmp_path / "oasis",
        tiny_base_model,
        max_steps=1,
        loss="oasis",
        teacher="ranker",
        teacher_model=str(ranker),
    )
    assert (train_retriever(oasis) / "model.safetensors").exists()
    inbatch = RankerConfig(
        pairs=str(pairs_file),
        out=str(tmp_path / "inbatch"),
        base_model=str(tiny_base_model),
        negatives="inbatch",
        num_negatives=3,
        batch_size=4,
        max_steps=1,
        threads=1,
    )
    assert (train_ranker(inbatch) / "model.safetensors").exists()


def test_a_fresh_ranker_learns_a_toy_task_within_a_few_dozen_steps(tmp_path: Path) -> None:
    # A task a cross-encoder must read both sides for: each query is one word, its code is that
    # word, and the negatives are the other queries' codes. A zero head starts the listwise loss
    # at chance, ln(1+M); with the body and the head learning the loss must fall well below it.
    # (Dropout is off so that 80 steps of a 2-layer random BERT suffice.)
    from conftest import build_tiny_base_model
    from tokenizers import Tokenizer

    base = build_tiny_base_model(tmp_path / "base", dropout=0.0)
    vocabulary = Tokenizer.from_file(str(base / "tokenizer.json")).get_vocab()
    words = sorted(word for word in vocabulary if word.isalpha() and len(word) > 3)[:16]
    pairs = tmp_path / "toy.jsonl"
    write_pairs(pairs, [Pair(id=str(index), query=word, code=word) for index, word in enumerate(words)])
    config = RankerConfig(
        pairs=str(pairs),
        out=str(tmp_path / "ranker"),
        base_model=str(base),
        negatives="inbatch",
        num_negatives=3,
        batch_size=8,
        max_steps=80,
        checkpoint_every=20,
        lr=3e-3,
        head_lr=3e-3,
        threads=1,
    )
    history = json.loads((train_ranker(config) / CONFIG_FILE).read_text())["dev_history"]
    losses = [entry["loss"] for entry in history]
    chance = math.log(4)
    assert losses[0] == pytest.approx(chance, abs=0.02)
    assert losses[-1] < 0.5 * chance


def test_a_ranker_starts_from_a_retrievers_encoder_with_a_fresh_head(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    retriever = train_retriever(
        _retriever_config(pairs_file, tmp_path / "retriever", tiny_base_model, max_steps=1)
    )
    ranker = load_ranker(retriever)
    weights = load_model(retriever, "retriever").state_dict()
    assert all(torch.equal(value, ranker.state_dict()[name]) for name, value in weights.items())
    assert not ranker.head.weight.any() and not ranker.head.bias.any()
    ranker.keep_layers(1)
    assert len(ranker.bert.encoder.layer) == 1 and ranker.bert.config.num_hidden_layers == 1


def test_ranker_with_distillation_margin_and_two_dev_sets_records_the_fusion_weight(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    retriever = train_retriever(
        _retriever_config(pairs_file, tmp_path / "retriever", tiny_base_model, max_steps=1)
    )
    config = _ranker_config(
        pairs_file,
        tmp_path / "ranker",
        tiny_base_model,
        init=str(retriever),
        layers=1,
        retriever=str(retriever),
        skip_top=2,
        distill_steps=1,
        max_steps=2,
        checkpoint_every=1,
        dev=f"{pairs_file},{pairs_file}",
    )
    result = train_ranker(config)
    info = json.loads((result / CONFIG_FILE).read_text())
    first = info["dev_history"][0]
    assert set(first["sets"]) == {str(pairs_file)} and 0 < first["retriever_mrr"] <= 1
    assert first["fusion_weight"] in FUSION_WEIGHTS and first["mrr"] >= first["cascade_mrr"]
    assert info["best"]["fusion_weight"] in FUSION_WEIGHTS
    ranking = torch.load(tmp_path / "ranker" / NEGATIVES_FILE)
    assert ranking["ranked"].shape[1] == 4  # the margin's 2 and the 2 negatives
    assert load_ranker(result).bert.config.num_hidden_layers == 1
    # exported with its retriever, the card carries the fusion weight the dev run chose
    assert main(["export", str(retriever), "--ranker", str(result), "--out", str(tmp_path / "folder")]) == 0
    assert ModelFolder.load(tmp_path / "folder").card.fusion_weight == info["best"]["fusion_weight"]


def test_mixed_negatives_take_the_ranking_window_after_the_margin_then_other_batch_codes() -> None:
    ranked = torch.tensor([[10 + row * 10 + column for column in range(5)] for row in range(4)])
    ranking = RetrieverRanking(ranked, torch.zeros(4, 2), torch.zeros(4, 2))
    keys = ["a", "b", "c", "d"]
    config = RankerConfig(
        negatives="mixed", num_negatives=3, ranking_negatives=2, skip_top=1, distill_steps=1
    )
    rows = candidates_of(config, 1, [0, 1, 2], keys, ranking)
    for query, row in zip([0, 1, 2], rows, strict=True):
        assert row[:3] == [query, *ranked[query, 1:3].tolist()]  # gold, then ranks after the margin
        assert row[3] in {0, 1, 2} - {query}  # then another query's code from the batch
    distilling = candidates_of(config, 0, [0], keys, ranking)
    assert distilling == [[0, *ranked[0, :3].tolist()]]  # the warm-up distils the retriever's top M


def test_dev_every_evaluates_at_its_steps_and_checkpoints_at_each(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    config = _ranker_config(
        pairs_file,
        tmp_path / "ranker",
        tiny_base_model,
        layers=1,
        retriever=str(tiny_base_model),
        negatives="mixed",
        max_steps=3,
        checkpoint_every=1,
        dev_every=2,
        dev=str(pairs_file),
    )
    info = json.loads((train_ranker(config) / CONFIG_FILE).read_text())
    evaluated = [entry["step"] for entry in info["dev_history"] if "mrr" in entry]
    assert [entry["step"] for entry in info["dev_history"]] == [1, 2, 3]
    assert evaluated == [2, 3]  # every second step, and the last


def test_a_runtime_model_folder_serves_as_the_rankers_retriever(
    pairs_file: Path, tiny_base_model: Path, tiny_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CODESIEVE_EVAL_CACHE", str(tmp_path / "cache"))
    config = _ranker_config(
        pairs_file,
        tmp_path / "ranker",
        tiny_base_model,
        retriever=str(tiny_model),  # its int8 ONNX retriever ranks the negatives and the dev pool
        distill_steps=1,
        max_steps=1,
        dev=str(pairs_file),
    )
    info = json.loads((train_ranker(config) / CONFIG_FILE).read_text())
    assert 0 < info["dev_history"][0]["retriever_mrr"] <= 1
    assert list((tmp_path / "cache").glob("*.npy"))  # the pool's embeddings, shared with `trainer eval`


def test_export_onto_adds_a_ranker_to_a_model_folder_and_keeps_its_retriever(
    pairs_file: Path, tiny_base_model: Path, other_tiny_model: Path, tmp_path: Path
) -> None:
    common = dict(
        pairs=str(pairs_file), base_model=str(tiny_base_model), negatives="inbatch", num_negatives=2
    )
    ranker = train_ranker(RankerConfig(out=str(tmp_path / "ranker"), max_steps=1, threads=1, **common))  # type: ignore[arg-type]
    out = tmp_path / "with-ranker"
    argv = ["export", "--onto", str(other_tiny_model), "--ranker", str(ranker), "--out", str(out)]
    assert main([*argv, "--fusion-weight", "2.5"]) == 0
    folder = ModelFolder.load(out)
    assert folder.ranker_path is not None and folder.card.fusion_weight == 2.5
    assert folder.retriever_sha256 == ModelFolder.load(other_tiny_model).retriever_sha256
    assert folder.card.training["ranker"]["config"]["negatives"] == "inbatch"
    assert "ranker.onnx" in folder.card.extra["parity"]

    short = train_ranker(
        RankerConfig(out=str(tmp_path / "short"), max_steps=1, threads=1, max_code_tokens=16, **common)  # type: ignore[arg-type]
    )
    assert main(["export", "--onto", str(other_tiny_model), "--ranker", str(short), "--out", str(out)]) == 2
    assert main(["export", "--onto", str(other_tiny_model), "--out", str(out)]) == 2


def test_bad_settings_are_named(pairs_file: Path, tiny_base_model: Path, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="estimator-model"):
        train_retriever(
            _retriever_config(pairs_file, tmp_path, tiny_base_model, loss="softinfonce", estimator="trained")
        )
    with pytest.raises(ValueError, match="unknown"):
        train_retriever(_retriever_config(pairs_file, tmp_path, tiny_base_model, loss="triplet"))
    with pytest.raises(ValueError, match="--retriever"):
        train_ranker(RankerConfig(pairs=str(pairs_file), out=str(tmp_path)))


def test_doc_view_and_frozen_lower_layers_train(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    start = load_model(tiny_base_model, "retriever")
    result = train_retriever(
        _retriever_config(
            pairs_file,
            tmp_path / "run",
            tiny_base_model,
            max_steps=2,
            code_view="doc",
            freeze_layers=1,
            lr=1e-3,
        )
    )
    trained = load_model(result, "retriever")
    frozen = trained.bert.embeddings.word_embeddings.weight
    assert torch.equal(frozen, start.bert.embeddings.word_embeddings.weight)
    assert torch.equal(
        trained.bert.encoder.layer[0].output.dense.weight, start.bert.encoder.layer[0].output.dense.weight
    )
    assert not torch.equal(
        trained.bert.encoder.layer[-1].output.dense.weight, start.bert.encoder.layer[-1].output.dense.weight
    )


def test_gradient_checkpointing_trains_the_same_weights(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import codesieve.trainer.train_retriever as training

    loaded = []

    def load_and_keep(folder: Path) -> object:
        model = load_retriever(folder)
        loaded.append(model)
        return model

    monkeypatch.setattr(training, "load_retriever", load_and_keep)
    results = {}
    for checkpointing in (False, True):
        config = _retriever_config(
            pairs_file, tmp_path / f"run-{checkpointing}", tiny_base_model, max_steps=3, lr=1e-3
        )
        result = train_retriever(replace(config, gradient_checkpointing=checkpointing))
        results[checkpointing] = dict(load_model(result, "retriever").named_parameters())
    on = (
        "is_activation_checkpointing"
        if hasattr(loaded[0].bert, "is_activation_checkpointing")
        else "is_gradient_checkpointing"
    )
    assert [getattr(model.bert, on) for model in loaded] == [False, True]  # the newer name where there is one
    for name, weight in results[False].items():  # dropout is on: the recomputation replays its masks
        assert torch.allclose(results[True][name], weight, atol=1e-6), name


def test_training_takes_only_the_chosen_pair_sources(tiny_base_model: Path, tmp_path: Path) -> None:
    pairs = mine_repository(DATA / "minirepo").pairs
    tests = [
        replace(pair, id=f"t{n}", query=f"test words {n}", source="test-name") for n, pair in enumerate(pairs)
    ]
    path = tmp_path / "pairs.jsonl"
    write_pairs(path, [*pairs, *tests])
    for sources, count in (("docstring", len(pairs)), ("docstring,test-name", 2 * len(pairs))):
        result = train_retriever(
            _retriever_config(path, tmp_path / sources, tiny_base_model, max_steps=1, sources=sources)
        )
        assert json.loads((result / CONFIG_FILE).read_text())["data"]["count"] == count


def test_corpus_paths_become_the_paths_a_checkout_has() -> None:
    cases = {
        "requests-2.34.2/src/requests/api.py": "src/requests/api.py",
        "package/lib/rules/x.js": "lib/rules/x.js",
        "usr/share/gocode/src/github.com/spf13/cobra/command.go": "command.go",
        "usr/share/gocode/src/google.golang.org/grpc/server.go": "server.go",
        "usr/share/cargo/registry/tokio-1.24.2/src/net/tcp.rs": "src/net/tcp.rs",
        "usr/share/rubygems-integration/all/gems/rack-3.0.8/lib/rack/utils.rb": "lib/rack/utils.rb",
        "usr/lib/ruby/vendor_ruby/sequel/model.rb": "lib/sequel/model.rb",
    }
    assert {path: workspace_path(path) for path in cases} == cases
    pair = Pair(
        id="p", query="q", code="def get(): pass", path="requests-2.34.2/src/api.py", name="Session.get"
    )
    assert pair.code_view("bare", ("path", "name")) == "src/api.py Session.get\ndef get(): pass"
    assert pair.code_view("bare", ("name",)) == "Session.get\ndef get(): pass"
    assert pair.code_view("bare") == "def get(): pass"


def test_code_context_reaches_the_card_and_the_query_anchor_holds_queries_near_the_base(
    pairs_file: Path, tiny_base_model: Path, tmp_path: Path
) -> None:
    base = load_model(tiny_base_model, "retriever")
    tokens = TokenEncoder(tiny_base_model / "tokenizer.json")
    queries = tokenize(tokens, [pair.query for pair in read_pairs(pairs_file)], 32)
    anchor = embed(base, queries, torch.device("cpu"))
    drift = {}
    for weight, weight_type in ((0.0, "int8"), (50.0, "int8-asym")):
        run = tmp_path / f"anchor-{weight}"
        config = _retriever_config(
            pairs_file,
            run,
            tiny_base_model,
            max_steps=6,
            lr=3e-3,
            code_context="path,name",
            query_anchor=weight,
        )
        trained = load_model(train_retriever(config), "retriever")
        drift[weight] = float(query_drift(embed(trained, queries, torch.device("cpu")), anchor))
        out = tmp_path / f"model-{weight}"
        limit = ["--max-code-tokens", "48"] if weight else []  # the card's limit instead of training's
        assert main(["export", str(run), "--out", str(out), "--weight-type", weight_type, *limit]) == 0
        assert ModelFolder.load(out).card.code_context == ("path", "name")
        assert ModelFolder.load(out).card.max_code_tokens == (48 if weight else config.max_code_tokens)
        assert weight_type_of(ModelFolder.load(out).retriever_path) == weight_type
    assert drift[50.0] < drift[0.0] / 2, drift
    with pytest.raises(ValueError, match="code context"):
        train_retriever(_retriever_config(pairs_file, tmp_path / "bad", tiny_base_model, code_context="url"))
