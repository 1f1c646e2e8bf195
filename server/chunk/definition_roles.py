"""What a tree-sitter node is to the chunker, and the qualified scope around a definition.

A node's role is a definition (function or class) or a container (impl block, module, namespace)
whose name qualifies the definitions inside it; a definition's scope is the names of the roles
around it ("Server.handle", "outer.inner") and whether the innermost one is class-like. A top-level
definition after a namespace statement (C#'s `namespace A.B;`) is in that namespace.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from dataclasses import dataclass

from tree_sitter import Node

from .language_specs import NAME_JOINS, NAME_UNWRAP, LanguageSpec
from .text_positions import SourceText

_MAX_NAME_DEPTH = 16  # how far a name node is unwrapped before giving up (`*pkg.T[U]` -> `T`)
MAX_NESTING = 12  # named scopes around a definition past which it is no chunk of its own
MAX_BARE_NAME_CHARS = 200  # of one bare name (identifier, type); a longer one is cut
_SEPARATORS = re.compile(r"::|[:\\]")  # between the parts of a name: C++'s `a::b`, Lua's `a:b`, PHP's `A\\B`


@dataclass(frozen=True, slots=True)
class Role:
    """What a node is to the chunker: a definition or a scope that qualifies names."""

    kind: str  # "function" | "class" | "container"
    name: str | None  # None: a nameless scope, which qualifies nothing
    class_like: bool  # functions directly inside it are methods
    method: bool = False  # a method by its own declaration (Go receivers)


@dataclass(frozen=True, slots=True)
class Scope:
    """The names enclosing a node, outermost first, and whether the innermost is class-like."""

    names: tuple[str, ...]  # at most MAX_NESTING: a deeper scope keeps those of its ancestor
    class_like: bool
    depth: int = 0  # named scopes around, all of them

    def enter(self, role: Role | None) -> Scope:
        """Return the scope inside a node with this role."""
        if role is None:
            return self
        if not role.name:
            return Scope(self.names, role.class_like, self.depth)
        # 10,000 nested definitions made 10,000 ever longer tuples (and names): 289 MB
        names = (*self.names, role.name) if self.depth < MAX_NESTING else self.names
        return Scope(names, role.class_like, self.depth + 1)


class ScopeResolver:
    """Finds the scope enclosing a node, remembering the scope inside every ancestor it visits."""

    def __init__(self, spec: LanguageSpec, source: SourceText) -> None:
        self._spec = spec
        self._source = source
        self._inside: dict[int, Scope] = {}
        self._namespaces: tuple[list[int], list[str]] | None = None  # start bytes and names, in order

    def enclosing(self, node: Node) -> Scope:
        """Return the scope that holds a node."""
        chain: list[Node] = []
        ancestor = node.parent
        while ancestor is not None and ancestor.id not in self._inside:
            chain.append(ancestor)
            ancestor = ancestor.parent
        if ancestor is not None:
            scope = self._inside[ancestor.id]
        else:  # `chain` ends at the root, whose scope is that of the namespace statement above `node`
            root = chain.pop()
            scope = self._file_scope(root, chain[-1] if chain else node)
        for outer in reversed(chain):
            scope = scope.enter(role_of(outer, self._spec, self._source))
            self._inside[outer.id] = scope
        return scope

    def _file_scope(self, root: Node, top: Node) -> Scope:
        """The scope of a top-level node: the namespace of the last namespace statement before it."""
        if not self._spec.namespace_statements:
            return Scope((), class_like=False)
        if self._namespaces is None:
            statements = [
                (child.start_byte, _name(child, "name", self._source))
                for child in root.named_children
                if child.type in self._spec.namespace_statements and child.child_by_field_name("body") is None
            ]
            named = [(start, name) for start, name in statements if name]
            self._namespaces = [start for start, _ in named], [name for _, name in named]
        starts, names = self._namespaces
        index = bisect_right(starts, top.start_byte) - 1
        return Scope((), class_like=False).enter(
            Role("container", names[index], False) if index >= 0 else None
        )


def chunk_kind(role: Role, scope: Scope) -> str:
    """Return a definition's chunk kind: a function is a method inside a class-like scope."""
    if role.kind == "class":
        return "class"
    return "method" if role.method or scope.class_like else "function"


def role_of(node: Node, spec: LanguageSpec, source: SourceText) -> Role | None:
    """Return what a node is to the chunker, or None for a node that is neither definition nor scope."""
    node_type = node.type
    if node_type in spec.body_fields and node.child_by_field_name(spec.body_fields[node_type]) is None:
        return None  # a declaration or a reference (`struct s *p;`), no definition
    if node_type in spec.functions:
        name = _definition_name(node, spec, source)
        receiver = node.child_by_field_name(spec.receiver_field) if spec.receiver_field else None
        if receiver is None:
            return Role("function", name, class_like=False)
        owner = _bare_name(receiver, source)
        return Role("function", f"{owner}.{name}" if owner and name else name, class_like=False, method=True)
    if node_type in spec.classes:
        return Role("class", _definition_name(node, spec, source), class_like=True)
    if node_type in spec.containers:
        name_field, class_like = spec.containers[node_type]
        name = _name(node, name_field, source) if name_field else None
        return Role("container", name, class_like)
    if node_type in spec.valued:
        name_field, value_field = spec.valued[node_type]
        value = _field_at(node, value_field)
        kind = spec.value_kinds.get(value.type) if value is not None else None
        if kind is None or value is None:
            return None
        if value.type in spec.body_fields and value.child_by_field_name(spec.body_fields[value.type]) is None:
            return None  # `typedef struct s s_t;` names a type defined elsewhere
        return Role(kind, _name(node, name_field, source), class_like=kind != "function")
    return None


def _definition_name(node: Node, spec: LanguageSpec, source: SourceText) -> str | None:
    """Return the name of a function or class node."""
    keyword = spec.keyword_names.get(node.type)
    name = keyword or _name(node, spec.name_fields.get(node.type, "name"), source)
    prefix = spec.name_prefixes.get(node.type)
    return f"{prefix}{name}" if prefix and name else name


def _name(node: Node, name_field: str, source: SourceText) -> str | None:
    """Return the bare name in a node's name field, or None where it has none."""
    name_node = _field_at(node, name_field)
    return _bare_name(name_node, source) if name_node is not None else None


def _field_at(node: Node, path: str) -> Node | None:
    """A node's field, or a field of its child of a given type: `name`, `variable_list/name`."""
    *child_types, name_field = path.split("/")
    for child_type in child_types:
        child = next((child for child in node.named_children if child.type == child_type), None)
        if child is None:
            return None
        node = child
    return node.child_by_field_name(name_field)


def _bare_name(node: Node, source: SourceText, budget: list[int] | None = None) -> str | None:
    """Reduce a name or type node to its identifier (`*Server` -> `Server`, `S<T>` -> `S`), or to its
    parts joined by dots (`a::B::f` -> `a.B.f`). At most `_MAX_NAME_DEPTH` nodes are looked into,
    over all parts; past that, the end of a node's own text stands for it."""
    budget = [_MAX_NAME_DEPTH] if budget is None else budget
    while budget[0] > 0 and node.type in NAME_UNWRAP:
        budget[0] -= 1
        name_field = NAME_UNWRAP[node.type]
        inner = node.child_by_field_name(name_field) if name_field else node.named_child(0)
        if inner is None:
            break
        node = inner
    if node.type in NAME_JOINS and node.named_child_count:
        if budget[0] <= 0:  # a name in thousands of parts: keep its innermost end
            end = node.end_byte
            tail = source.data[max(node.start_byte, end - 4 * MAX_BARE_NAME_CHARS) : end]
            dotted = _SEPARATORS.sub(".", "".join(tail.decode("utf-8", "replace").split()))
            return dotted[-MAX_BARE_NAME_CHARS:] or None
        budget[0] -= 1
        parts = [_bare_name(child, source, budget) for child in node.named_children[:_MAX_NAME_DEPTH]]
        joined = ".".join(part for part in parts if part)
        return joined[-MAX_BARE_NAME_CHARS:] or None
    start = node.start_byte
    text = source.data[start : min(node.end_byte, start + 4 * MAX_BARE_NAME_CHARS)].decode("utf-8", "replace")
    name = " ".join(text.split()).strip("'\"`")
    return name[:MAX_BARE_NAME_CHARS] or None
