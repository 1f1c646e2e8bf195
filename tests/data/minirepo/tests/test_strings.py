"""Tests of the string helpers."""


def check_slug_roundtrip(value):
    """Check that a slug of a slug is the same slug again."""
    first = value.lower()
    second = first.lower()
    return first == second
