"""A function's own name, hidden: the text a find-similar query is made of when its name must not give it away.

A query that carries its own name finds its other version by that name alone (a lexical match that
any system makes); hiding it asks what the code does. `hide_own_name` takes the file a chunk was cut
from (parsed again with the chunker's grammar, so a method's text is read in its class) and replaces,
within the chunk's lines, with a neutral placeholder:

- the definition's own name: `def NAME(`, `function NAME(`, a method's `NAME(...) {`, the target of
  `const NAME = ...`, `NAME: function`, `X.NAME = function`, and the name of a named function
  expression so bound (`X.NAME = function OTHER(`: OTHER too, and the bare OTHER by which it recurs);
- its recursive self-references: a function's bare `NAME` (Python `identifier`, JavaScript
  `identifier`; not attributes or properties of other objects, not keyword arguments), a bare
  `NAME` in a method's decorators (`@NAME.setter`), and a
  method's `self.NAME`, `cls.NAME`, `this.NAME`, `Owner.NAME`, `Owner.prototype.NAME`, where Owner
  is the class part of its qualified name, and, for `X.NAME = function`, `X.NAME` itself;
- the class part where it stands in the definition's own name: `Owner.prototype.NAME = function`
  and the self-references `Owner.NAME`, `Owner.prototype.NAME` (other uses of the class, such as
  `new Owner()` or `super(Owner, self)`, are uses, not the definition's name, and stay).

The placeholder is `f` for the name and `C` for the class part; when the chunk already uses that
word, `f2`, `f3`, ... (`C2`, ...): the first one it does not use. Names the language prescribes
rather than the author chooses (Python's `__dunder__` methods, JavaScript's `constructor`) are
kept: they tell the role, as any reader of the code sees it. Comments and strings are left as
they are (a docstring's prose is the function's description, not its identifier).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from tree_sitter import Node

from codesieve.server.chunk.chunker import Chunk
from codesieve.server.chunk.definition_roles import role_of
from codesieve.server.chunk.language_specs import spec_for
from codesieve.server.chunk.text_positions import SourceText
from codesieve.server.languages import parse_within_budget

NAME_PLACEHOLDER = "f"
CLASS_PLACEHOLDER = "C"
LANGUAGES = ("python", "javascript")  # where the rules above are written; other languages keep their text
_RECEIVERS = {"python": ("self", "cls"), "javascript": ("this",)}
_ATTRIBUTE = {  # the node of `receiver.member` and its two fields
    "python": ("attribute", "object", "attribute"),
    "javascript": ("member_expression", "object", "property"),
}
_WORD = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")


def is_prescribed(name: str) -> bool:
    """Whether a name is the language's rather than the author's (`__init__`, `constructor`)."""
    return (name.startswith("__") and name.endswith("__") and len(name) > 4) or name == "constructor"


def hide_own_name(source: str, chunk: Chunk) -> str:
    """The chunk's text with its own name (and the class part where it names it) replaced.

    `source` is the whole file the chunk was cut from; the text comes back unchanged where the file
    does not parse, the language has no rules here, or the name is prescribed."""
    name = chunk.name.rsplit(".", 1)[-1]
    spec = spec_for(chunk.language)
    if chunk.language not in LANGUAGES or spec is None or is_prescribed(name):
        return chunk.text
    text = SourceText(source)
    tree = parse_within_budget(chunk.language, text.data)
    definition = _definition(tree.root_node, chunk, name, text) if tree is not None else None
    if definition is None:
        return chunk.text
    owner = chunk.name.rsplit(".", 2)[-2] if chunk.kind == "method" and "." in chunk.name else ""
    replacements = dict(_own_name_nodes(definition, chunk, name, owner, text))
    words = set(_WORD.findall(chunk.text))
    placeholder = {"name": _unused(NAME_PLACEHOLDER, words), "class": _unused(CLASS_PLACEHOLDER, words)}
    first = text.offset((chunk.start_line - 1, 0))
    last = first + len(chunk.text)
    hidden = chunk.text
    for (start, end), role in sorted(replacements.items(), reverse=True):  # back to front: offsets hold
        start, end = start - first, end - first
        if start >= 0 and end <= last - first:
            hidden = hidden[:start] + placeholder[role] + hidden[end:]
    return hidden


def _unused(stem: str, words: set[str]) -> str:
    """`stem`, or `stem` with the first number from 2 up that makes a word the chunk does not use."""
    candidate, number = stem, 1
    while candidate in words:
        number += 1
        candidate = f"{stem}{number}"
    return candidate


def _definition(root: Node, chunk: Chunk, name: str, text: SourceText) -> Node | None:
    """The outermost function-like node named `name` that ends on the chunk's last line and starts in it."""
    spec = spec_for(chunk.language)
    assert spec is not None
    first_row, last_row = chunk.start_line - 1, chunk.end_line - 1
    stack = [root]
    while stack:
        node = stack.pop()
        if node.end_point[0] < first_row or node.start_point[0] > last_row:
            continue
        if node.start_point[0] >= first_row and text.end_point(node)[0] == last_row:
            role = role_of(node, spec, text)
            if role is not None and role.kind == "function" and role.name == name:
                return node
        stack.extend(reversed(node.children))
    return None


def _own_name_nodes(
    definition: Node, chunk: Chunk, name: str, owner: str, text: SourceText
) -> Iterator[tuple[tuple[int, int], str]]:
    """((start, end) character offsets in the file, "name" | "class") of each occurrence to hide."""
    language = chunk.language
    target = _defined_name(definition)
    if target is not None and target.type == "member_expression":
        target_object = target.child_by_field_name("object")
        property_node = target.child_by_field_name("property")
        assert target_object is not None and property_node is not None
        yield _span(property_node, text), "name"
        defining_object = text.text_of(target_object)
        owner = _prototype_owner(target_object, text) or owner
        yield from _owner_spans(target_object, owner, text)
    elif target is not None and _unquoted(text.text_of(target)) == name:
        yield _span(target, text), "name"
        defining_object = ""
    else:
        defining_object = ""
    names = {name, *_function_expression_name(definition, text)}
    kind_node, object_field, name_field = _ATTRIBUTE[language]
    receivers = {*_RECEIVERS[language], *(o for o in (owner, f"{owner}.prototype", defining_object) if o)}
    for node in _descendants(_wrapped(definition, chunk)):
        if node.type == "identifier" and text.text_of(node) in names:
            recursion = chunk.kind == "function" or _in_decorator(node)
            if recursion and not _is_member_or_keyword(node, language):
                yield _span(node, text), "name"
        elif node.type == kind_node:
            member = node.child_by_field_name(name_field)
            receiver = node.child_by_field_name(object_field)
            if member is None or receiver is None or text.text_of(member) != name:
                continue
            if text.text_of(receiver) in receivers:
                yield _span(member, text), "name"
                yield from _owner_spans(receiver, owner, text)


def _function_expression_name(definition: Node, text: SourceText) -> list[str]:
    """The name of a named function expression a binding holds (`x.parse = function parseAll(`), which
    is the definition's name too, by which it calls itself."""
    value = definition.child_by_field_name("value") or definition.child_by_field_name("right")
    named = value.child_by_field_name("name") if value is not None and "function" in value.type else None
    return [text.text_of(named)] if named is not None and named.type == "identifier" else []


def _wrapped(definition: Node, chunk: Chunk) -> Node:
    """The definition with the wrappers around it that the chunk takes in (decorators, `export`)."""
    spec = spec_for(chunk.language)
    node = definition
    while (
        spec is not None
        and node.parent is not None
        and node.parent.type in spec.wrappers
        and node.parent.start_point[0] >= chunk.start_line - 1
    ):
        node = node.parent
    return node


def _defined_name(definition: Node) -> Node | None:
    """The node holding the name a definition gives: its name, key, left side or property field."""
    for field_name in ("name", "key", "left", "property"):
        found = definition.child_by_field_name(field_name)
        if found is not None:
            return found
    return None


def _prototype_owner(target_object: Node, text: SourceText) -> str:
    """`Owner` when an assignment target's object is `Owner.prototype`, else ""."""
    if target_object.type != "member_expression":
        return ""
    inner = target_object.child_by_field_name("object")
    member = target_object.child_by_field_name("property")
    if inner is None or member is None or text.text_of(member) != "prototype" or inner.type != "identifier":
        return ""
    return text.text_of(inner)


def _owner_spans(receiver: Node, owner: str, text: SourceText) -> Iterator[tuple[tuple[int, int], str]]:
    """The class part inside a self-reference's receiver (`Owner` or `Owner.prototype`)."""
    if not owner:
        return
    if receiver.type == "identifier" and text.text_of(receiver) == owner:
        yield _span(receiver, text), "class"
    elif receiver.type == "member_expression":
        inner = receiver.child_by_field_name("object")
        if inner is not None and inner.type == "identifier" and text.text_of(inner) == owner:
            yield _span(inner, text), "class"


def _is_member_or_keyword(node: Node, language: str) -> bool:
    """Whether an identifier names an attribute of another object or a keyword argument (Python)."""
    parent = node.parent
    if parent is None:
        return False
    if language == "python" and parent.type == "attribute":
        return parent.child_by_field_name("attribute") == node
    if language == "python" and parent.type == "keyword_argument":
        return parent.child_by_field_name("name") == node
    return False


def _in_decorator(node: Node) -> bool:
    """Whether a node is inside a decorator (`@NAME.setter` names the property being defined)."""
    parent = node.parent
    while parent is not None and parent.type not in ("decorator", "function_definition", "block"):
        parent = parent.parent
    return parent is not None and parent.type == "decorator"


def _descendants(node: Node) -> Iterator[Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(current.children)


def _span(node: Node, text: SourceText) -> tuple[int, int]:
    """A node's character offsets in the file, quotes of a string key left out."""
    start, end = text.offset(node.start_point), text.offset(node.end_point)
    if node.type == "string" and end - start >= 2:
        return start + 1, end - 1
    return start, end


def _unquoted(value: str) -> str:
    return value.strip("'\"`")
