"""What one source file defines and imports, read with tree-sitter queries.

An outline is the index's unit: the definitions (functions, classes,
methods, constants, types) with their line ranges, and the imports that bind
names to other modules. Lines are 0-based and inclusive; snippets are cut at
whole lines.

Each language has a query, `syntax/queries/<language>.scm` (TSX uses
TypeScript's), written with these captures:

- `@definition.function` / `.method` / `.class` / `.constant` on the whole
  definition node, `@name` on its name, and, where the tree does not nest a
  member in its type (Go methods, C++ `Type::f`), `@container` on the type's
  name. When several patterns capture one `@name` node the first pattern in
  the file wins, so specific patterns go before general ones.
- `@import` on an import statement (its first line is `Import.line`), with
  `@import.module`, `@import.name` and `@import.alias` on its parts, or
  `@import.tree` on a Rust use tree, which is flattened here; a pattern's
  `(#set! import.name "...")` gives a member the source does not spell
  ("default", "*").
- Captures starting with `_` are for predicates only.

Patterns match at any depth; this module then decides, from a small table
per language, what is kept: anything inside a function body (or a lambda,
an inline Rust `mod`, a Java anonymous class) is left out; functions inside
a class, interface, trait or impl become methods of it; constants are kept
at the top level only, except Java's `static final` fields.

It is one file, over 500 lines, because one table per language steers both
the definitions and the imports, and the types' docstrings spell out, per
language, what that extraction gives; split, a language's rules would be
spread over files.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from typing import cast

import tree_sitter

from code_llama_ls.syntax.languages import language_for, parser_for

__all__ = ["Definition", "DefinitionKind", "FileOutline", "Import", "outline_file"]


class DefinitionKind(StrEnum):
    """What a definition is; ranking and rendering differ a little per kind."""

    FUNCTION = "function"  # also prototypes and function-like macros (C, C++, Rust)
    METHOD = "method"
    CLASS = "class"  # also structs, interfaces, traits, enums, type aliases
    CONSTANT = "constant"  # module-level constants and variables


@dataclass(frozen=True)
class Definition:
    """One named definition in a file."""

    name: str
    kind: DefinitionKind
    start_line: int
    """First line: decorators, attributes, `export` and `template <...>` included.

    Leading comments (doc comments too) are not included.
    """
    end_line: int
    """Last line of the whole definition, body included."""
    summary_end_line: int
    """Last line of the signature, plus the docstring in Python.

    Python: the docstring's last line when the body starts with one, else the
    line of the `:` that opens the body. Brace languages: the line of the
    body's opening `{`. `start_line..summary_end_line` is what a prompt shows
    when the body does not fit; it equals `end_line` for one-line or
    body-less definitions and for constants.
    """
    container: str | None = None
    """For members, the enclosing type's bare name, else None.

    Members are methods, nested types and Java constants; the container is
    the class/interface/trait name, the Rust impl's type (`impl<T> Tr for
    P<T>` gives "P"), a Go method's receiver type, C++ `Type::f`'s "Type".
    """


@dataclass(frozen=True)
class Import:
    """One name an import binds in the importing file.

    `module` is the module as written, in the language's own syntax; `name`
    is the imported member ("default" for a JS default import, "*" for a
    wildcard) or None when the module itself is bound; `alias` is the local
    name when it differs from what `local_name` would give without it.
    `line` is the first line of the import statement (of the spec, in a
    grouped Go import). Imports are taken from anywhere in the file (under
    `if TYPE_CHECKING:`, in `try:`, in function bodies). Per language:

    - Python: `import os` -> ("os", None, None); `import a.b` binds `a`, so
      ("a.b", None, "a"); `import a.b as c` -> ("a.b", None, "c");
      `from .utils import helper as h` -> (".utils", "helper", "h");
      `from . import x` -> (".", "x", None); `from a import *` -> ("a", "*",
      None). `from __future__ import ...` is a compiler directive, left out.
    - JS/TS: `import d, { a, b as c } from "./x"` -> ("./x", "default", "d"),
      ("./x", "a", None), ("./x", "b", "c"); `import * as ns from "./y"` ->
      ("./y", "*", "ns"); `const x = require("./z")` -> ("./z", None, "x");
      `const { a, b: c } = require("./z")` -> ("./z", "a", None), ("./z",
      "b", "c"); TS `import x = require("./z")` and `import type` likewise.
      Side-effect imports (`import "./side"`) and re-exports (`export ...
      from`) bind nothing and are left out.
    - Go: `import "a/b"` -> ("a/b", None, None); `f "fmt"` -> ("fmt", None,
      "f"); a dot import `. "z"` -> ("z", "*", None); blank `_` imports bind
      nothing and are left out.
    - Rust: `use crate::a::b;` -> ("crate::a", "b", None); `use std::io;` ->
      ("std", "io", None); `use a::{b, c as d, e::{f}, self};` -> ("a", "b",
      None), ("a", "c", "d"), ("a::e", "f", None), ("a", None, None);
      `use super::x::*;` -> ("super::x", "*", None); `use serde;` ->
      ("serde", None, None); `extern crate foo as bar;` -> ("foo", None,
      "bar"); a file module `mod foo;` -> ("foo", None, None), a module of
      the current crate given by its own name rather than a path.
    - Java: `import com.x.Y;` -> ("com.x", "Y", None); `import com.x.*;` ->
      ("com.x", "*", None); `import static com.x.Y.m;` -> ("com.x.Y", "m",
      None).
    - C/C++: `#include "foo.h"` -> ("foo.h", "*", None) and `#include
      <stdio.h>` -> ("<stdio.h>", "*", None) (angle brackets kept, to tell
      system headers apart); C++ `using namespace std;` -> ("std", "*",
      None), `using std::vector;` -> ("std", "vector", None).
    """

    module: str
    name: str | None
    alias: str | None
    line: int

    @property
    def local_name(self) -> str | None:
        """The name this import binds in the file (None for wildcards)."""
        if self.alias:
            return self.alias
        if self.name == "*":
            return None
        if self.name is not None:
            return self.name
        # A bound module: its last component ("os.path" -> "path", "./util" -> "util").
        tail = self.module.replace("::", "/").replace(".", "/").rstrip("/").rsplit("/", 1)[-1]
        return tail or None


@dataclass(frozen=True)
class FileOutline:
    """Everything the index keeps of one file besides its text."""

    language: str
    definitions: tuple[Definition, ...]
    imports: tuple[Import, ...]


# --- Extraction -------------------------------------------------------------

_QUERY_PACKAGE = "code_llama_ls.syntax"
_KINDS: dict[str, DefinitionKind] = {f"definition.{kind.value}": kind for kind in DefinitionKind}
_CAPTURES = frozenset(
    {"name", "container", "import", "import.module", "import.name", "import.alias", "import.tree"}
)
_BODY_SEARCH_DEPTH = 3
"""How deep under a definition node its `body` field is looked for (`const f = () => {}`)."""


@dataclass(frozen=True)
class _Grammar:
    """Where one language's definitions sit in its tree, beyond what its query matches."""

    query: str
    """Stem of the query file in `syntax/queries/`."""
    scopes: frozenset[str] = frozenset()
    """Node types with a local body: definitions anywhere under one are left out."""
    containers: Mapping[str, str] = field(default_factory=dict)
    """Node types whose definitions are members -> the field holding the container's name."""
    wrappers: frozenset[str] = frozenset()
    """Parent node types whose first line is the definition's (decorators, export, template)."""
    attached: frozenset[str] = frozenset()
    """Sibling node types that, directly above a definition, belong to it (attributes)."""
    member_constants: bool = False
    """Keep constants inside a container (Java's `static final` fields); else top level only."""
    indented: bool = False
    """Python: the summary ends at the header's `:` or the docstring, not at a `{`."""
    module_head_binds: bool = False
    """Python: `import a.b` binds `a`, recorded as the import's alias."""


_JS_SCOPES = frozenset(
    {
        "function_declaration",
        "generator_function_declaration",
        "function_expression",
        "generator_function",
        "arrow_function",
        "method_definition",
        "class_static_block",
    }
)
_JS_WRAPPERS = frozenset({"export_statement", "lexical_declaration", "variable_declaration"})
_TYPESCRIPT = _Grammar(
    "typescript",
    scopes=_JS_SCOPES,
    containers={
        "class_declaration": "name",
        "abstract_class_declaration": "name",
        "class": "name",
        "interface_declaration": "name",
    },
    wrappers=_JS_WRAPPERS | {"ambient_declaration"},
    attached=frozenset({"decorator"}),
)

_GRAMMARS: dict[str, _Grammar] = {
    "python": _Grammar(
        "python",
        scopes=frozenset({"function_definition", "lambda"}),
        containers={"class_definition": "name"},
        wrappers=frozenset({"decorated_definition"}),
        indented=True,
        module_head_binds=True,
    ),
    "javascript": _Grammar(
        "javascript",
        scopes=_JS_SCOPES,
        containers={"class_declaration": "name", "class": "name"},
        wrappers=_JS_WRAPPERS,
    ),
    "typescript": _TYPESCRIPT,
    "tsx": _TYPESCRIPT,
    "go": _Grammar(
        "go",
        scopes=frozenset({"function_declaration", "method_declaration", "func_literal"}),
        containers={"type_spec": "name"},
    ),
    "rust": _Grammar(
        "rust",
        scopes=frozenset({"function_item", "closure_expression", "mod_item"}),
        containers={"impl_item": "type", "trait_item": "name"},
        attached=frozenset({"attribute_item"}),
    ),
    "java": _Grammar(
        "java",
        scopes=frozenset(
            {
                "method_declaration",
                "constructor_declaration",
                "compact_constructor_declaration",
                "lambda_expression",
                "static_initializer",
                "object_creation_expression",
            }
        ),
        containers=dict.fromkeys(
            (
                "class_declaration",
                "interface_declaration",
                "enum_declaration",
                "record_declaration",
                "annotation_type_declaration",
            ),
            "name",
        ),
        member_constants=True,
    ),
    "c": _Grammar("c", scopes=frozenset({"function_definition"})),
    "cpp": _Grammar(
        "cpp",
        scopes=frozenset({"function_definition", "lambda_expression"}),
        containers=dict.fromkeys(
            ("class_specifier", "struct_specifier", "union_specifier"), "name"
        ),
        wrappers=frozenset({"template_declaration"}),
    ),
}


def outline_file(text: str, language: str, tree: tree_sitter.Tree | None = None) -> FileOutline:
    """The definitions and imports of `text`, a file in `language` (a canonical name).

    `tree` is a parse of `text` when the caller has one; else the text is
    parsed here. Broken code is fine: whatever the parser made sense of is
    returned. Raises ValueError for a language with no query.
    """
    grammar = _grammar(language)
    query = _query(language)
    # As the document store does: a lone surrogate (from a client's JSON) is 3 bytes.
    source = text.encode("utf-8", "surrogatepass")
    if tree is None:
        tree = parser_for(language).parse(source)
    matches = tree_sitter.QueryCursor(query).matches(tree.root_node)
    return FileOutline(
        language=language,
        definitions=_definitions(matches, grammar, source),
        imports=_imports(matches, query, grammar, source),
    )


def _grammar(language: str) -> _Grammar:
    """The table entry for `language`; ValueError when it has no outline query."""
    try:
        return _GRAMMARS[language]
    except KeyError:
        raise ValueError(
            f"no outline query for language {language!r}; known: {', '.join(_GRAMMARS)}"
        ) from None


@cache
def _query(language: str) -> tree_sitter.Query:
    """The compiled outline query for `language`, checked for unknown capture names."""
    from importlib import resources  # here: 7 ms of the server's start otherwise

    resource = resources.files(_QUERY_PACKAGE) / "queries" / f"{_grammar(language).query}.scm"
    query = tree_sitter.Query(language_for(language), resource.read_text(encoding="utf-8"))
    # tree-sitter 0.25's stub calls capture_count a method; it is a property.
    for index in range(cast(int, query.capture_count)):
        name = query.capture_name(index)
        if name not in _CAPTURES and name not in _KINDS and not name.startswith("_"):
            raise ValueError(f"{resource}: unknown capture @{name}")
    return query


_Matches = list[tuple[int, dict[str, list[tree_sitter.Node]]]]


# --- Definitions ------------------------------------------------------------


def _definitions(matches: _Matches, grammar: _Grammar, source: bytes) -> tuple[Definition, ...]:
    """One definition per @name node (the first pattern matching it decides), in file order."""
    chosen: dict[int, tuple[int, Definition | None]] = {}
    for pattern, captures in matches:
        kind_and_node = _definition_capture(captures)
        name = _first(captures, "name")
        if kind_and_node is None or name is None:
            continue
        previous = chosen.get(name.start_byte)
        if previous is not None and previous[0] <= pattern:
            continue
        kind, node = kind_and_node
        container = _first(captures, "container")
        chosen[name.start_byte] = (
            pattern,
            _definition(kind, node, name, container, grammar, source),
        )
    return tuple(
        definition for _, (_, definition) in sorted(chosen.items()) if definition is not None
    )


def _definition_capture(
    captures: dict[str, list[tree_sitter.Node]],
) -> tuple[DefinitionKind, tree_sitter.Node] | None:
    """The match's @definition.<kind> capture as (kind, node), if it has one."""
    for capture, nodes in captures.items():
        kind = _KINDS.get(capture)
        if kind is not None and nodes:
            return kind, nodes[0]
    return None


def _definition(
    kind: DefinitionKind,
    node: tree_sitter.Node,
    name: tree_sitter.Node,
    container: tree_sitter.Node | None,
    grammar: _Grammar,
    source: bytes,
) -> Definition | None:
    """The definition `node` names, or None when it is local or an unwanted member."""
    placement = _placement(node, grammar, source)
    if placement is None:
        return None
    is_member, container_name = placement
    if container is not None:
        container_name = _text(container, source)
    if is_member and kind is DefinitionKind.FUNCTION:
        kind = DefinitionKind.METHOD
    if is_member and kind is DefinitionKind.CONSTANT and not grammar.member_constants:
        return None
    start, end = _start_line(node, grammar), _last_line(node)
    summary = end if kind is DefinitionKind.CONSTANT else _summary_end(node, kind, grammar)
    return Definition(
        name=_text(name, source),
        kind=kind,
        start_line=start,
        end_line=end,
        summary_end_line=min(max(summary, start), end),
        container=container_name,
    )


def _placement(
    node: tree_sitter.Node, grammar: _Grammar, source: bytes
) -> tuple[bool, str | None] | None:
    """(is a member, container name) for `node`, or None when it sits in a local scope."""
    is_member = False
    container: str | None = None
    ancestor = node.parent
    while ancestor is not None:
        if ancestor.type in grammar.scopes:
            return None
        name_field = grammar.containers.get(ancestor.type)
        if name_field is not None and not is_member:
            is_member = True
            named = ancestor.child_by_field_name(name_field)
            container = None if named is None else _type_name(named, source)
        ancestor = ancestor.parent
    return is_member, container


def _type_name(node: tree_sitter.Node, source: bytes) -> str:
    """The bare name in a type: `P<T>` -> "P", `fmt::Display` -> "Display"."""
    while True:
        inner = node.child_by_field_name("name") or node.child_by_field_name("type")
        if inner is None:
            return _text(node, source)
        node = inner


def _start_line(node: tree_sitter.Node, grammar: _Grammar) -> int:
    """First line of `node` with its wrappers (decorators, export) and attached attributes."""
    while node.parent is not None and node.parent.type in grammar.wrappers:
        node = node.parent
    while node.prev_sibling is not None and node.prev_sibling.type in grammar.attached:
        node = node.prev_sibling
    return node.start_point.row


def _last_line(node: tree_sitter.Node) -> int:
    """Last line holding part of `node` (a node ending in a newline ends the line before)."""
    row, column = node.end_point
    return row - 1 if column == 0 and row > node.start_point.row else row


def _summary_end(node: tree_sitter.Node, kind: DefinitionKind, grammar: _Grammar) -> int:
    """Last line of the signature (plus the docstring, in Python)."""
    body = _body(node)
    if body is None:
        if kind is DefinitionKind.CLASS and not grammar.indented:
            return _first_brace_line(node, _last_line(node))
        return _last_line(node)
    if grammar.indented:
        return _indented_summary_end(node, body)
    return body.start_point.row


def _body(node: tree_sitter.Node) -> tree_sitter.Node | None:
    """The nearest `body` field at or under `node`, searched breadth-first a few levels deep."""
    level = [node]
    for _ in range(_BODY_SEARCH_DEPTH):
        for candidate in level:
            body = candidate.child_by_field_name("body")
            if body is not None:
                return body
        level = [child for candidate in level for child in candidate.named_children]
    return None


def _first_brace_line(node: tree_sitter.Node, default: int) -> int:
    """Line of the first `{` in `node` (a Go struct or interface type has no body field)."""
    pending = [node]
    while pending:
        current = pending.pop()
        if current.type == "{":
            return current.start_point.row
        pending.extend(reversed(current.children))
    return default


def _indented_summary_end(node: tree_sitter.Node, body: tree_sitter.Node) -> int:
    """Python: the docstring's last line, else the line of the `:` that opens the body."""
    first = next((child for child in body.named_children if child.type != "comment"), None)
    if (
        first is not None
        and first.type == "expression_statement"
        and first.named_child_count == 1
        and first.named_children[0].type in ("string", "concatenated_string")
    ):
        return _last_line(first)
    colons = [
        child.end_point.row
        for child in node.children
        if child.type == ":" and child.end_byte <= body.start_byte
    ]
    return colons[-1] if colons else body.start_point.row


# --- Imports ----------------------------------------------------------------


def _imports(
    matches: _Matches, query: tree_sitter.Query, grammar: _Grammar, source: bytes
) -> tuple[Import, ...]:
    """Every import the matches hold, in file order."""
    found = [
        item
        for pattern, captures in matches
        if "import" in captures
        for item in _match_imports(captures, query.pattern_settings(pattern), grammar, source)
    ]
    found.sort(key=lambda item: (item[1].line, item[0]))
    return tuple(item for _, item in found)


def _match_imports(
    captures: dict[str, list[tree_sitter.Node]],
    settings: dict[str, str | None],
    grammar: _Grammar,
    source: bytes,
) -> Iterator[tuple[int, Import]]:
    """(byte position, import) for what one import match binds."""
    line = captures["import"][0].start_point.row
    use_tree = _first(captures, "import.tree")
    if use_tree is not None:
        for position, path, member, local in _use_tree(use_tree, "", source):
            yield position, _import(path, member, local, line)
        return
    module = _first(captures, "import.module")
    if module is None:
        return
    name_node, alias_node = _first(captures, "import.name"), _first(captures, "import.alias")
    name = settings.get("import.name") if name_node is None else _text(name_node, source)
    alias = None if alias_node is None else _text(alias_node, source)
    module_text = _text(module, source)
    if grammar.module_head_binds and name is None and alias is None:
        alias = module_text.split(".", 1)[0]
    parts = [node for node in (module, name_node, alias_node) if node is not None]
    yield max(node.start_byte for node in parts), _import(module_text, name, alias, line)


def _import(module: str, name: str | None, alias: str | None, line: int) -> Import:
    """An Import whose alias is kept only when it differs from the name bound without it."""
    plain = Import(module, name, None, line)
    if alias is None or alias == plain.local_name:
        return plain
    return Import(module, name, alias, line)


_UseItem = tuple[int, str, str | None, str | None]


def _use_tree(node: tree_sitter.Node, prefix: str, source: bytes) -> Iterator[_UseItem]:
    """Flatten a Rust use tree under path `prefix` into (position, module, name, alias)."""
    kind = node.type
    if kind == "scoped_identifier":
        path, name = node.child_by_field_name("path"), node.child_by_field_name("name")
        if name is not None:
            module = _join_path(prefix, "" if path is None else _text(path, source))
            yield name.start_byte, module, _text(name, source), None
    elif kind in ("identifier", "crate", "super", "self"):
        text = _text(node, source)
        if not prefix:
            yield node.start_byte, text, None, None
        elif kind == "self":  # `use a::b::{self}` binds the module b itself
            yield node.start_byte, prefix, None, None
        else:
            yield node.start_byte, prefix, text, None
    elif kind == "use_as_clause":
        yield from _aliased(node, prefix, source)
    elif kind == "use_wildcard":
        path = node.named_children[0] if node.named_child_count else None
        module = _join_path(prefix, "" if path is None else _text(path, source))
        yield node.start_byte, module, "*", None
    elif kind in ("scoped_use_list", "use_list"):
        yield from _use_list(node, prefix, source)


def _aliased(node: tree_sitter.Node, prefix: str, source: bytes) -> Iterator[_UseItem]:
    """`path as alias`: what `path` imports, under the alias."""
    path, alias = node.child_by_field_name("path"), node.child_by_field_name("alias")
    if path is None or alias is None:
        return
    for position, module, name, _ in _use_tree(path, prefix, source):
        yield position, module, name, _text(alias, source)


def _use_list(node: tree_sitter.Node, prefix: str, source: bytes) -> Iterator[_UseItem]:
    """`path::{a, b::c}` (or a bare `{...}`): each item under the extended prefix."""
    path = node.child_by_field_name("path")
    if path is not None:
        prefix = _join_path(prefix, _text(path, source))
    items = node.child_by_field_name("list") if node.type == "scoped_use_list" else node
    for item in () if items is None else items.named_children:
        yield from _use_tree(item, prefix, source)


def _join_path(prefix: str, path: str) -> str:
    return f"{prefix}::{path}" if prefix and path else prefix or path


# --- Helpers ----------------------------------------------------------------


def _first(captures: dict[str, list[tree_sitter.Node]], name: str) -> tree_sitter.Node | None:
    nodes = captures.get(name)
    return nodes[0] if nodes else None


def _text(node: tree_sitter.Node, source: bytes) -> str:
    return source[node.start_byte : node.end_byte].decode("utf-8", "replace")
