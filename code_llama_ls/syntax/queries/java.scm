; Outline query for Java, read by code_llama_ls.context.outline.
;
; Definitions: @definition.function / .method / .class / .constant on the
; whole definition node (annotations included: they are in its modifiers)
; and @name on its name. Interfaces, enums, records and annotation types are
; classes; `static final` fields and interface constants are constants, kept
; with their class as container. The outline code skips anything inside a
; method, lambda or anonymous class.
; Imports: @import on the declaration (its line is Import.line),
; @import.module on the package or type, @import.name on the member; a
; wildcard gets (#set! import.name "*").
; When several patterns capture the same @name node, the first one wins.

(class_declaration name: (identifier) @name) @definition.class

(interface_declaration name: (identifier) @name) @definition.class

(enum_declaration name: (identifier) @name) @definition.class

(record_declaration name: (identifier) @name) @definition.class

(annotation_type_declaration name: (identifier) @name) @definition.class

(method_declaration name: (identifier) @name) @definition.method

(constructor_declaration name: (identifier) @name) @definition.method

((field_declaration
  (modifiers) @_modifiers
  declarator: (variable_declarator name: (identifier) @name)) @definition.constant
  (#match? @_modifiers "\\bstatic\\b")
  (#match? @_modifiers "\\bfinal\\b"))

(constant_declaration
  declarator: (variable_declarator name: (identifier) @name)) @definition.constant

; import com.x.Y; / import static com.x.Y.m;
(import_declaration
  (scoped_identifier scope: (_) @import.module name: (identifier) @import.name) .) @import

; import com.x.*; / import static com.x.Y.*;
((import_declaration (_) @import.module (asterisk)) @import
  (#set! import.name "*"))
