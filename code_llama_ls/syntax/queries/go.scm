; Outline query for Go, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node and @name on its name; @container names a method's
; receiver type. Type specs (structs, interfaces, named types, aliases) are
; classes; the outline code skips anything declared inside a function, and
; interface method elements become methods of their type.
; Imports: @import on the import spec (its line is Import.line),
; @import.module on the path, @import.alias on a package alias; a dot import
; gets (#set! import.name "*"); blank (`_`) imports bind nothing and are left out.
; When several patterns capture the same @name node, the first one wins.

(function_declaration name: (identifier) @name) @definition.function

(method_declaration
  receiver: (parameter_list
    (parameter_declaration
      type: [
        (type_identifier) @container
        (pointer_type (type_identifier) @container)
        (generic_type type: (type_identifier) @container)
        (pointer_type (generic_type type: (type_identifier) @container))
      ]))
  name: (field_identifier) @name) @definition.method

(method_declaration name: (field_identifier) @name) @definition.method

(method_elem name: (field_identifier) @name) @definition.method

(type_spec name: (type_identifier) @name) @definition.class

(type_alias name: (type_identifier) @name) @definition.class

; (the grammar files the commas of `const a, b = ...` under `name:` too, so
; a field pattern would stop at the first name)
(const_spec (identifier) @name) @definition.constant

(var_spec name: (identifier) @name) @definition.constant

(import_spec
  name: (package_identifier) @import.alias
  path: (interpreted_string_literal (interpreted_string_literal_content) @import.module)) @import

(import_spec
  !name
  path: (interpreted_string_literal (interpreted_string_literal_content) @import.module)) @import

((import_spec
  name: (dot)
  path: (interpreted_string_literal (interpreted_string_literal_content) @import.module)) @import
  (#set! import.name "*"))
