; Outline query for C++, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node and @name on its name; @container names the class of
; an out-of-class member definition (`int Stack::size() { ... }`). Functions
; include prototypes and function-like macros; functions declared or defined
; in a class body become its methods; classes, structs, unions, enums,
; typedefs and `using` aliases are classes; namespace-scope variables and
; valued `#define`s are constants. A `template <...>` line belongs to the
; definition under it. The outline code skips anything inside a function.
; Imports: @import on the `#include` or `using` (its line is Import.line),
; @import.module and @import.name on the parts: "foo.h" -> foo.h,
; <vector> -> <vector> (angle brackets kept), both with name "*";
; `using namespace std;` -> std, "*"; `using std::vector;` -> std, vector.
; When several patterns capture the same @name node, the first one wins.

; Type::name(...) { ... } (the scope is the container)
(function_definition
  declarator: [
    (function_declarator
      declarator: (qualified_identifier
        scope: [(namespace_identifier) @container (template_type name: (type_identifier) @container)]
        name: (_) @name))
    (pointer_declarator
      declarator: (function_declarator
        declarator: (qualified_identifier
          scope: [(namespace_identifier) @container (template_type name: (type_identifier) @container)]
          name: (_) @name)))
    (reference_declarator
      (function_declarator
        declarator: (qualified_identifier
          scope: [(namespace_identifier) @container (template_type name: (type_identifier) @container)]
          name: (_) @name)))
  ]) @definition.method

(function_definition
  declarator: [
    (function_declarator
      declarator: [(identifier) (field_identifier) (destructor_name) (operator_name)] @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
    (reference_declarator
      (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
  ]) @definition.function

; prototypes
(declaration
  declarator: [
    (function_declarator
      declarator: [(identifier) (field_identifier) (destructor_name) (operator_name)] @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
    (reference_declarator
      (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
  ]) @definition.function

; member function declarations in a class body
(field_declaration
  declarator: [
    (function_declarator
      declarator: [(identifier) (field_identifier) (destructor_name) (operator_name)] @name)
    (pointer_declarator
      declarator: (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
    (reference_declarator
      (function_declarator
        declarator: [(identifier) (field_identifier) (operator_name)] @name))
  ]) @definition.function

(preproc_function_def name: (identifier) @name) @definition.function

(class_specifier name: (type_identifier) @name body: (_)) @definition.class

(struct_specifier name: (type_identifier) @name body: (_)) @definition.class

(union_specifier name: (type_identifier) @name body: (_)) @definition.class

(enum_specifier name: (type_identifier) @name body: (_)) @definition.class

(alias_declaration name: (type_identifier) @name) @definition.class

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

((using_declaration "namespace" (_) @import.module) @import
  (#set! import.name "*"))

(using_declaration
  (qualified_identifier scope: (_) @import.module name: (identifier) @import.name)) @import
