; Outline query for C, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .class / .constant on the whole
; definition node and @name on its name. Functions include prototypes and
; function-like macros; structs, unions, enums and typedefs are classes;
; file-scope variables and valued `#define`s are constants. The outline code
; skips anything inside a function.
; Imports: @import on the `#include` (its line is Import.line) and
; @import.module on the path: "foo.h" -> foo.h, <stdio.h> -> <stdio.h>
; (angle brackets kept); an include brings in everything, so
; (#set! import.name "*").
; When several patterns capture the same @name node, the first one wins.

(function_definition
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (_ declarator: (function_declarator declarator: (identifier) @name))
    (_ declarator: (_ declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.function

; prototypes
(declaration
  declarator: [
    (function_declarator declarator: (identifier) @name)
    (_ declarator: (function_declarator declarator: (identifier) @name))
    (_ declarator: (_ declarator: (function_declarator declarator: (identifier) @name)))
  ]) @definition.function

(preproc_function_def name: (identifier) @name) @definition.function

(struct_specifier name: (type_identifier) @name body: (_)) @definition.class

(union_specifier name: (type_identifier) @name body: (_)) @definition.class

(enum_specifier name: (type_identifier) @name body: (_)) @definition.class

; typedef struct { ... } Name; / typedef unsigned long size;
(type_definition type: (_ !name body: (_)) declarator: (type_identifier) @name) @definition.class

(type_definition type: (_ !body) declarator: (type_identifier) @name) @definition.class

; file- or namespace-scope variables, through up to three declarators
; (`*p`, `a[]`, `x = ...`); a prototype's name was taken by the pattern above
(declaration
  declarator: [
    (identifier) @name
    (_ declarator: (identifier) @name)
    (_ declarator: (_ declarator: (identifier) @name))
    (_ declarator: (_ declarator: (_ declarator: (identifier) @name)))
  ]) @definition.constant

(preproc_def name: (identifier) @name value: (_)) @definition.constant

((preproc_include path: (string_literal (string_content) @import.module)) @import
  (#set! import.name "*"))

((preproc_include path: (system_lib_string) @import.module) @import
  (#set! import.name "*"))
