"""`python -m codesieve.trainer.corpus build ...` (see build.py)."""

import sys

from .build import main

sys.exit(main())
