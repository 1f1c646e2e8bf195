"""Small string helpers used across the project."""

import re
import unicodedata


def slugify(text, separator="-"):
    """Turn a title into a lowercase URL slug.

    Args:
        text: the title.
        separator: what joins the words.
    """
    normalized = unicodedata.normalize("NFKD", text)
    ascii_text = normalized.encode("ascii", "ignore").decode("ascii")
    words = re.findall(r"[a-zA-Z0-9]+", ascii_text.lower())
    return separator.join(words)


def truncate_words(text, limit, ellipsis="..."):
    """Shorten text to at most `limit` words, adding an ellipsis when cut.

    :param text: the text to shorten
    :param limit: the number of words to keep
    """
    words = text.split()
    if len(words) <= limit:
        return text
    return " ".join(words[:limit]) + ellipsis


def count_vowels(text):
    """Count the vowels in a string, ignoring case."""
    total = 0
    for char in text.lower():
        if char in "aeiou":
            total += 1
    return total


def is_palindrome(text):
    """Check whether a phrase reads the same backwards, ignoring spaces and punctuation."""
    letters = [char.lower() for char in text if char.isalnum()]
    return letters == letters[::-1]


def wrap_lines(text, width=72):
    """Wrap a paragraph into lines no longer than the given width.

    See https://en.wikipedia.org/wiki/Line_wrap_and_word_wrap for details.
    """
    lines, current = [], ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}".strip()
    if current:
        lines.append(current)
    return lines


class Template:
    """A string template with named placeholders."""

    def __init__(self, source):
        """Store the template source text for later rendering."""
        self.source = source
        self.fields = re.findall(r"\{(\w+)\}", source)
        self.cache = {}

    def render(self, **values):
        """Fill every placeholder with the value of the same name.

        Raises:
            KeyError: when a value is missing.
        """
        missing = [name for name in self.fields if name not in values]
        if missing:
            raise KeyError(", ".join(missing))
        return self.source.format(**values)

    def placeholders(self):
        """List the names of the placeholders in the order they first appear."""
        seen = []
        for name in self.fields:
            if name not in seen:
                seen.append(name)
        return seen
