; Outline query for TypeScript, also used for TSX, read by
; code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node and @name on its name; the outline code skips
; anything inside a function and makes functions inside a class methods.
; Interfaces, type aliases and enums are classes.
; Imports: @import on the statement (its first line is Import.line),
; @import.module, @import.name and @import.alias on the parts; a
; (#set! import.name "...") gives a member name the source does not spell.
; When several patterns capture the same @name node, the first one wins, so
; the specific `const f = () => ...` patterns come before the plain constant.

(function_declaration name: (identifier) @name) @definition.function

(generator_function_declaration name: (identifier) @name) @definition.function

(function_signature name: (identifier) @name) @definition.function

(class_declaration name: (type_identifier) @name) @definition.class

(abstract_class_declaration name: (type_identifier) @name) @definition.class

(interface_declaration name: (type_identifier) @name) @definition.class

(type_alias_declaration name: (type_identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

(class_body (method_definition name: (_) @name) @definition.method)

(class_body (method_signature name: (_) @name) @definition.method)

(class_body (abstract_method_signature name: (_) @name) @definition.method)

(interface_body (method_signature name: (_) @name) @definition.method)

(class_body
  (public_field_definition
    name: (_) @name
    value: [(arrow_function) (function_expression) (generator_function)]) @definition.method)

(variable_declarator
  name: (identifier) @name
  value: [(arrow_function) (function_expression) (generator_function)]) @definition.function

(variable_declarator name: (identifier) @name value: (class)) @definition.class

((variable_declarator name: (identifier) @name value: (_) @_value) @definition.constant
  (#not-match? @_value "^require\\s*\\("))

(variable_declarator name: (identifier) @name !value) @definition.constant

; import d, { a, b as c } from "./x" / import * as ns from "./y" / import type {...}
((import_statement
  (import_clause (identifier) @import.alias)
  source: (string (string_fragment) @import.module)) @import
  (#set! import.name "default"))

(import_statement
  (import_clause (named_imports (import_specifier name: (_) @import.name !alias)))
  source: (string (string_fragment) @import.module)) @import

(import_statement
  (import_clause
    (named_imports (import_specifier name: (_) @import.name alias: (_) @import.alias)))
  source: (string (string_fragment) @import.module)) @import

((import_statement
  (import_clause (namespace_import (identifier) @import.alias))
  source: (string (string_fragment) @import.module)) @import
  (#set! import.name "*"))

; import fs = require("fs")
(import_statement
  (import_require_clause
    (identifier) @import.alias
    source: (string (string_fragment) @import.module))) @import

; const x = require("./z") / const { a, b: c } = require("./z")
((variable_declarator
  name: (identifier) @import.alias
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string (string_fragment) @import.module) .))) @import
  (#eq? @_require "require"))

((variable_declarator
  name: (object_pattern (shorthand_property_identifier_pattern) @import.name)
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string (string_fragment) @import.module) .))) @import
  (#eq? @_require "require"))

((variable_declarator
  name: (object_pattern
    (pair_pattern key: (property_identifier) @import.name value: (identifier) @import.alias))
  value: (call_expression
    function: (identifier) @_require
    arguments: (arguments . (string (string_fragment) @import.module) .))) @import
  (#eq? @_require "require"))
