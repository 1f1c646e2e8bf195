"""The errors a request can end in, where every part and the command line can name them cheaply."""

from __future__ import annotations


class WorkspaceError(Exception):
    """A request about a workspace that cannot be answered; the message says why and what to do."""
