"""CodeSieve: local, offline semantic code search.

The distribution maps the user's folders into this package: `server/` is `codesieve.server`
(the torch-free runtime), `trainer/` is `codesieve.trainer`, `export/` is `codesieve.export`.
"""

__version__ = "0.1.0"
