"""The training corpus: the manifest of packages, fetching and unpacking them, mining their pairs,
and decontamination against the benchmarks. `python -m codesieve.trainer.corpus build` runs it."""
