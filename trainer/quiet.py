"""Keep the libraries quiet while a trainer command runs: its own lines are what the user reads.

transformers logs load reports and warnings, the ONNX exporter and ONNX Runtime's optimizer and
quantiser log or warn about things the user cannot act on. Unless ``--verbose``, warnings are
ignored, the standard logging below ERROR is off, and transformers says only errors; everything
is restored afterwards.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def quiet_libraries(verbose: bool) -> Iterator[None]:
    """Silence library warnings and logs (below ERROR) inside the block, unless `verbose`."""
    if verbose:
        yield
        return
    from transformers.utils import logging as transformers_logging

    verbosity = transformers_logging.get_verbosity()
    disabled = logging.root.manager.disable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        transformers_logging.set_verbosity_error()  # type: ignore[no-untyped-call]
        bars = transformers_logging.is_progress_bar_enabled()
        transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]  # "Loading weights"
        logging.disable(logging.WARNING)
        try:
            yield
        finally:
            logging.disable(disabled)
            transformers_logging.set_verbosity(verbosity)
            if bars:
                transformers_logging.enable_progress_bar()  # type: ignore[no-untyped-call]
