"""What a definition looks like in each grammar: the node-type tables the chunker reads.

Every language with a grammar (`languages.py`) has a `LanguageSpec`: the node types that are
functions, classes and naming scopes, where their names live, and which neighbouring nodes
(comments, decorators, attributes) belong to a definition. The chunker (`chunker.py`) and the
scope resolver (`definition_roles.py`) are generic over these tables; only this module knows
grammar node names.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass, field

from tree_sitter import Query

from ..languages import grammar_for


@dataclass(frozen=True, slots=True)
class LanguageSpec:
    """Node-type tables that tell the chunker what a definition looks like in one grammar.

    A definition node's name is the text of its `name` field (or the field named in
    `name_fields`), reduced by `NAME_UNWRAP` to a bare identifier (`S<T>` -> `S`) and by
    `NAME_JOINS` to dotted parts (`Foo::bar` -> `Foo.bar`).
    """

    functions: frozenset[str]
    """Function-like definitions; a method when the innermost enclosing scope is class-like."""
    classes: frozenset[str]
    """Class-like definitions: chunks of kind "class", and class-like scopes for what they hold."""
    containers: Mapping[str, tuple[str | None, bool]] = field(default_factory=dict)
    """Scopes that are not chunks: node type -> (name field or None for a nameless scope, class-like)."""
    valued: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    """Bindings named by a target: node type -> (name field, value field), e.g. `const f = () => 1`;
    a field may be one of a child of a given type (`variable_list/name`)."""
    value_kinds: Mapping[str, str] = field(default_factory=dict)
    """Value node type -> what a binding to it is: "function", "class" or "container"."""
    name_fields: Mapping[str, str] = field(default_factory=dict)
    """Definition node type -> its name field, where that is not `name`."""
    keyword_names: Mapping[str, str] = field(default_factory=dict)
    """Definitions named by their keyword, with no name field: node type -> name (Swift's `init`)."""
    name_prefixes: Mapping[str, str] = field(default_factory=dict)
    """Definitions whose name field leaves out a sign of their name: node type -> it (C#'s `~Name`)."""
    body_fields: Mapping[str, str] = field(default_factory=dict)
    """Node type -> the field it must have to define rather than declare or refer (C's `struct s *p`,
    a C++ `f() = default;`); without it the node is no definition."""
    namespace_statements: frozenset[str] = frozenset()
    """Statements with a `name` and no body that put the top-level definitions after them in a
    namespace (C#'s `namespace A.B;`, PHP's `namespace A\\B;`)."""
    receiver_field: str | None = None
    """Field holding a method receiver (Go): its type qualifies the name and makes it a method."""
    comments: frozenset[str] = frozenset()
    """Comment node types; a block of them directly above a definition is its doc comment."""
    prefixes: frozenset[str] = frozenset()
    """Decorators and attributes that belong to the definition directly below them."""
    wrappers: frozenset[str] = frozenset()
    """Nodes wrapping a single definition (export, decorated_definition): the chunk takes their span."""
    docstring_field: str | None = None
    """Body field whose first statement, when a string, is the docstring (Python)."""
    indented_blocks: bool = False
    """Blocks end by indentation (Python): comment lines dedented past the definition are not in it."""
    doc_across_blank_line: bool = False
    """A `/** ... */` comment keeps its definition across one blank line (JSDoc's habit)."""

    def definition_types(self) -> frozenset[str]:
        """All node types that can start a chunk."""
        return self.functions | self.classes | frozenset(self.valued)


NAME_UNWRAP: Mapping[str, str | None] = {
    # node type -> field leading to the bare name, None for the first named child.
    "generic_type": "type",
    "scoped_type_identifier": "name",
    "qualified_type": "name",
    "reference_type": "type",
    "pointer_type": None,
    "parameter_list": None,
    "parameter_declaration": "type",
    "member_expression": "property",
    # C and C++ declarators: `*name(args)`, `(*name)(args)`, `&name`, `Box<T>`
    "function_declarator": "declarator",
    "pointer_declarator": "declarator",
    "parenthesized_declarator": None,
    "reference_declarator": None,
    "attributed_declarator": None,
    "template_type": "name",
    "template_function": "name",
    "user_type": None,  # Swift: the type an extension extends
}

# Names in parts: each named child is reduced to its bare name, and the parts are joined by dots
# (`a::B::f` -> `a.B.f`, C#'s `A.B`, PHP's `A\B`, Lua's `M.sub:f` -> `M.sub.f`).
NAME_JOINS = frozenset(
    {
        "qualified_identifier",
        "nested_namespace_specifier",
        "qualified_name",
        "namespace_name",
        "dot_index_expression",
        "method_index_expression",
    }
)

_JS_FUNCTION_VALUES = {
    "arrow_function": "function",
    "function_expression": "function",
    "function": "function",
    "generator_function": "function",
    "class": "class",
    "object": "container",
}

_JAVASCRIPT = LanguageSpec(
    functions=frozenset({"function_declaration", "generator_function_declaration", "method_definition"}),
    classes=frozenset({"class_declaration"}),
    containers={"object": (None, True)},
    valued={
        "variable_declarator": ("name", "value"),
        "field_definition": ("property", "value"),
        "pair": ("key", "value"),
        "assignment_expression": ("left", "right"),
    },
    value_kinds=_JS_FUNCTION_VALUES,
    comments=frozenset({"comment"}),
    prefixes=frozenset({"decorator"}),
    wrappers=frozenset(
        {"export_statement", "lexical_declaration", "variable_declaration", "expression_statement"}
    ),
    doc_across_blank_line=True,
)

_TYPESCRIPT = LanguageSpec(
    functions=_JAVASCRIPT.functions,
    classes=frozenset(
        {"class_declaration", "abstract_class_declaration", "interface_declaration", "enum_declaration"}
    ),
    containers={"object": (None, True), "internal_module": ("name", False), "module": ("name", False)},
    valued={
        "variable_declarator": ("name", "value"),
        "public_field_definition": ("name", "value"),
        "pair": ("key", "value"),
        "assignment_expression": ("left", "right"),
    },
    value_kinds=_JS_FUNCTION_VALUES,
    comments=_JAVASCRIPT.comments,
    prefixes=_JAVASCRIPT.prefixes,
    wrappers=_JAVASCRIPT.wrappers | {"ambient_declaration"},
    doc_across_blank_line=True,
)

# C and C++: a struct, union or enum is a definition only with its body; so is a function (C++'s
# `f() = default;` has none). `typedef struct { ... } name;` names the struct.
_C_TYPES = ("struct_specifier", "union_specifier", "enum_specifier")
_C_BODIES = {kind: "body" for kind in (*_C_TYPES, "class_specifier", "function_definition")}
_C = LanguageSpec(
    functions=frozenset({"function_definition"}),
    classes=frozenset(_C_TYPES),
    valued={"type_definition": ("declarator", "type")},
    value_kinds=dict.fromkeys(_C_TYPES, "class"),
    name_fields={"function_definition": "declarator"},
    body_fields=_C_BODIES,
    comments=frozenset({"comment"}),
)
_CPP = LanguageSpec(
    functions=_C.functions,
    classes=frozenset({*_C_TYPES, "class_specifier"}),
    containers={"namespace_definition": ("name", False)},
    valued=_C.valued,
    value_kinds={**_C.value_kinds, "class_specifier": "class"},
    name_fields=_C.name_fields,
    body_fields=_C_BODIES,
    comments=_C.comments,
    wrappers=frozenset({"template_declaration"}),
)

_SPECS: Mapping[str, LanguageSpec] = {
    "python": LanguageSpec(
        functions=frozenset({"function_definition"}),
        classes=frozenset({"class_definition"}),
        comments=frozenset({"comment"}),
        prefixes=frozenset({"decorator"}),
        wrappers=frozenset({"decorated_definition"}),
        docstring_field="body",
        indented_blocks=True,
    ),
    "javascript": _JAVASCRIPT,
    "typescript": _TYPESCRIPT,
    "tsx": _TYPESCRIPT,
    "go": LanguageSpec(
        functions=frozenset({"function_declaration", "method_declaration"}),
        classes=frozenset(),
        valued={"type_spec": ("name", "type")},
        value_kinds={"struct_type": "class", "interface_type": "class"},
        receiver_field="receiver",
        comments=frozenset({"comment"}),
        wrappers=frozenset({"type_declaration"}),
    ),
    "java": LanguageSpec(
        functions=frozenset(
            {"method_declaration", "constructor_declaration", "compact_constructor_declaration"}
        ),
        classes=frozenset(
            {
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "annotation_type_declaration",
            }
        ),
        comments=frozenset({"line_comment", "block_comment"}),
    ),
    "rust": LanguageSpec(
        functions=frozenset({"function_item"}),
        classes=frozenset({"struct_item", "enum_item", "union_item", "trait_item"}),
        containers={"impl_item": ("type", True), "mod_item": ("name", False)},
        comments=frozenset({"line_comment", "block_comment"}),
        prefixes=frozenset({"attribute_item"}),
    ),
    "ruby": LanguageSpec(
        functions=frozenset({"method", "singleton_method"}),
        classes=frozenset({"class", "module"}),
        containers={"singleton_class": (None, True)},
        comments=frozenset({"comment"}),
    ),
    "c": _C,
    "cpp": _CPP,
    "csharp": LanguageSpec(
        functions=frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "destructor_declaration",
                "local_function_statement",
            }
        ),
        classes=frozenset(
            {
                "class_declaration",
                "struct_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
            }
        ),
        containers={"namespace_declaration": ("name", False)},
        name_prefixes={"destructor_declaration": "~"},
        namespace_statements=frozenset({"file_scoped_namespace_declaration"}),
        comments=frozenset({"comment"}),
    ),
    "php": LanguageSpec(
        functions=frozenset({"function_definition", "method_declaration"}),
        classes=frozenset(
            {"class_declaration", "interface_declaration", "trait_declaration", "enum_declaration"}
        ),
        containers={"namespace_definition": ("name", False)},
        namespace_statements=frozenset({"namespace_definition"}),
        comments=frozenset({"comment"}),
    ),
    "kotlin": LanguageSpec(
        functions=frozenset({"function_declaration", "secondary_constructor"}),
        classes=frozenset({"class_declaration", "object_declaration", "companion_object"}),
        keyword_names={"secondary_constructor": "constructor"},
        comments=frozenset({"line_comment", "block_comment"}),
    ),
    "swift": LanguageSpec(
        functions=frozenset(
            {
                "function_declaration",
                "protocol_function_declaration",
                "init_declaration",
                "deinit_declaration",
            }
        ),
        classes=frozenset({"class_declaration", "protocol_declaration"}),
        keyword_names={"init_declaration": "init", "deinit_declaration": "deinit"},
        comments=frozenset({"comment", "multiline_comment"}),
    ),
    "scala": LanguageSpec(
        functions=frozenset({"function_definition", "function_declaration"}),
        classes=frozenset(
            {
                "class_definition",
                "object_definition",
                "trait_definition",
                "enum_definition",
                "given_definition",
                "package_object",
            }
        ),
        comments=frozenset({"comment", "block_comment"}),
    ),
    "lua": LanguageSpec(
        functions=frozenset({"function_declaration"}),
        classes=frozenset(),
        # `M.f = function() ... end`, `local f = function() ... end` (the first target and value), and
        # `{ f = function() ... end }` (a table's functions are its methods)
        valued={
            "assignment_statement": ("variable_list/name", "expression_list/value"),
            "field": ("name", "value"),
        },
        value_kinds={"function_definition": "function", "table_constructor": "container"},
        comments=frozenset({"comment"}),
        wrappers=frozenset({"variable_declaration"}),
    ),
    "shell": LanguageSpec(
        functions=frozenset({"function_definition"}),
        classes=frozenset(),
        comments=frozenset({"comment"}),
    ),
}


def spec_for(language: str) -> LanguageSpec | None:
    """Return the node-type tables of a language, or None where it has no grammar."""
    return _SPECS.get(language)


@functools.cache
def definition_query(language: str) -> Query | None:
    """Return the query that captures a language's definitions (`@definition`) and comments and
    decorators (`@prefix`), or None where it has no grammar."""
    grammar = grammar_for(language)
    spec = spec_for(language)
    if grammar is None or spec is None:
        return None
    definitions = " ".join(f"({kind})" for kind in sorted(spec.definition_types()))
    source = f"[{definitions}] @definition"
    if spec.comments | spec.prefixes:
        prefixes = " ".join(f"({kind})" for kind in sorted(spec.comments | spec.prefixes))
        source += f"\n[{prefixes}] @prefix"
    query: Query = Query(grammar, source)
    return query
