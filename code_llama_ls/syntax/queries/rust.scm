; Outline query for Rust, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node and @name on its name. Structs, enums, unions,
; traits and type aliases are classes; an impl block is not a definition,
; but the functions in it (and in a trait) become methods of the impl's type.
; `#[...]` attributes directly above an item belong to it. The outline code
; skips items inside functions and inside inline `mod name { ... }` blocks.
; Imports: @import on the item (its first line is Import.line). A `use`
; puts @import.tree on its argument, which the outline code flattens into
; one import per bound name; `extern crate` and a body-less `mod name;`
; (a file module) use @import.module and @import.alias.
; When several patterns capture the same @name node, the first one wins.

(function_item name: (identifier) @name) @definition.function

(function_signature_item name: (identifier) @name) @definition.function

(macro_definition name: (identifier) @name) @definition.function

(struct_item name: (type_identifier) @name) @definition.class

(enum_item name: (type_identifier) @name) @definition.class

(union_item name: (type_identifier) @name) @definition.class

(trait_item name: (type_identifier) @name) @definition.class

(type_item name: (type_identifier) @name) @definition.class

(const_item name: (identifier) @name) @definition.constant

(static_item name: (identifier) @name) @definition.constant

(use_declaration argument: (_) @import.tree) @import

(extern_crate_declaration
  name: (identifier) @import.module
  alias: (identifier)? @import.alias) @import

(mod_item name: (identifier) @import.module !body) @import
