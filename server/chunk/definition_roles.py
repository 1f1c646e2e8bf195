"""What a tree-sitter node is to the chunker, and the qualified scope around a definition.

A node's role is a definition (function or class) or a container (impl block, module, namespace)
whose name qualifies the definitions inside it; a definition's scope is the names of the roles
around it ("Server.handle", "outer.inner") and whether the innermost one is class-like.
"""

from __future__ import annotations

from dataclasses import dataclass

from tree_sitter import Node

from ..languages import NAME_UNWRAP, LanguageSpec
from .text_positions import SourceText

_MAX_NAME_DEPTH = 16  # how far a name node is unwrapped before giving up (`*pkg.T[U]` -> `T`)
MAX_NESTING = 12  # named scopes around a definition past which it is no chunk of its own
MAX_BARE_NAME_CHARS = 200  # of one bare name (identifier, type); a longer one is cut


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

    def enclosing(self, node: Node) -> Scope:
        """Return the scope that holds a node."""
        chain: list[Node] = []
        ancestor = node.parent
        while ancestor is not None and ancestor.id not in self._inside:
            chain.append(ancestor)
            ancestor = ancestor.parent
        scope = self._inside[ancestor.id] if ancestor is not None else Scope((), class_like=False)
        for outer in reversed(chain):
            scope = scope.enter(role_of(outer, self._spec, self._source))
            self._inside[outer.id] = scope
        return scope


def chunk_kind(role: Role, scope: Scope) -> str:
    """Return a definition's chunk kind: a function is a method inside a class-like scope."""
    if role.kind == "class":
        return "class"
    return "method" if role.method or scope.class_like else "function"


def role_of(node: Node, spec: LanguageSpec, source: SourceText) -> Role | None:
    """Return what a node is to the chunker, or None for a node that is neither definition nor scope."""
    node_type = node.type
    if node_type in spec.functions:
        name = _name(node, spec.name_fields.get(node_type, "name"), source)
        receiver = node.child_by_field_name(spec.receiver_field) if spec.receiver_field else None
        if receiver is None:
            return Role("function", name, class_like=False)
        owner = _bare_name(receiver, source)
        return Role("function", f"{owner}.{name}" if owner and name else name, class_like=False, method=True)
    if node_type in spec.classes:
        return Role("class", _name(node, spec.name_fields.get(node_type, "name"), source), class_like=True)
    if node_type in spec.containers:
        name_field, class_like = spec.containers[node_type]
        name = _name(node, name_field, source) if name_field else None
        return Role("container", name, class_like)
    if node_type in spec.valued:
        name_field, value_field = spec.valued[node_type]
        value = node.child_by_field_name(value_field)
        kind = spec.value_kinds.get(value.type) if value is not None else None
        if kind is None:
            return None
        return Role(kind, _name(node, name_field, source), class_like=kind != "function")
    return None


def _name(node: Node, name_field: str, source: SourceText) -> str | None:
    """Return the bare name in a node's name field, or None where it has none."""
    name_node = node.child_by_field_name(name_field)
    return _bare_name(name_node, source) if name_node is not None else None


def _bare_name(node: Node, source: SourceText) -> str | None:
    """Reduce a name or type node to its identifier (`*Server` -> `Server`, `S<T>` -> `S`)."""
    for _ in range(_MAX_NAME_DEPTH):
        if node.type not in NAME_UNWRAP:
            break
        name_field = NAME_UNWRAP[node.type]
        inner = node.child_by_field_name(name_field) if name_field else node.named_child(0)
        if inner is None:
            break
        node = inner
    start = node.start_byte
    text = source.data[start : min(node.end_byte, start + 4 * MAX_BARE_NAME_CHARS)].decode("utf-8", "replace")
    name = " ".join(text.split()).strip("'\"`")
    return name[:MAX_BARE_NAME_CHARS] or None
