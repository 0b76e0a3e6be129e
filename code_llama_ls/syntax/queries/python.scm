; Outline query for Python, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node and @name on its name. Where a definition sits (top
; level, class member, inside a function) is decided by the outline code, so
; patterns here match at any depth; functions in a class become methods.
; Imports: @import on the statement (its first line is Import.line),
; @import.module, @import.name and @import.alias on the parts; a
; (#set! import.name "...") gives a member name the source does not spell.
; When several patterns capture the same @name node, the first one wins.

(function_definition name: (identifier) @name) @definition.function

(class_definition name: (identifier) @name) @definition.class

(type_alias_statement left: (type (identifier) @name)) @definition.class

(expression_statement (assignment left: (identifier) @name)) @definition.constant

; import a.b / import a.b as c
(import_statement name: (dotted_name) @import.module) @import

(import_statement
  name: (aliased_import
    name: (dotted_name) @import.module
    alias: (identifier) @import.alias)) @import

; from .m import x / from .m import x as y / from m import *
(import_from_statement
  module_name: (_) @import.module
  name: (dotted_name) @import.name) @import

(import_from_statement
  module_name: (_) @import.module
  name: (aliased_import
    name: (dotted_name) @import.name
    alias: (identifier) @import.alias)) @import

((import_from_statement
  module_name: (_) @import.module
  (wildcard_import)) @import
  (#set! import.name "*"))
