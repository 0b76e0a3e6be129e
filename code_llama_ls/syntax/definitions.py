"""Find the definition (function, method, class) that encloses a span of code.

Explain-selection uses it when the selection is empty: the user means "this
function". Node types are per grammar; a language without a list falls back
to no enclosing definition.
"""

from __future__ import annotations

import tree_sitter

DEFINITION_TYPES: dict[str, frozenset[str]] = {
    "python": frozenset({"function_definition", "class_definition", "decorated_definition"}),
    "javascript": frozenset(
        {"function_declaration", "method_definition", "class_declaration", "arrow_function"}
    ),
    "typescript": frozenset(
        {
            "function_declaration",
            "method_definition",
            "class_declaration",
            "interface_declaration",
            "arrow_function",
        }
    ),
    "go": frozenset({"function_declaration", "method_declaration", "type_declaration"}),
    "rust": frozenset({"function_item", "impl_item", "struct_item", "enum_item", "trait_item"}),
    "java": frozenset({"method_declaration", "constructor_declaration", "class_declaration"}),
    "c": frozenset({"function_definition", "struct_specifier"}),
    "cpp": frozenset({"function_definition", "class_specifier", "struct_specifier"}),
}
DEFINITION_TYPES["tsx"] = DEFINITION_TYPES["typescript"]


def enclosing_definition(
    tree: tree_sitter.Tree, language: str, start_byte: int, end_byte: int
) -> tuple[int, int] | None:
    """Byte span of the innermost definition holding [start_byte, end_byte], if any."""
    types = DEFINITION_TYPES.get(language)
    if types is None:
        return None
    node: tree_sitter.Node | None = tree.root_node.descendant_for_byte_range(start_byte, end_byte)
    while node is not None:
        if node.type in types:
            return node.start_byte, node.end_byte
        node = node.parent
    return None
