"""outline_file: the definitions and imports of a file, per language, from tree-sitter queries."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import pytest

from code_llama_ls.context.outline import (
    DefinitionKind,
    FileOutline,
    outline_file,
)
from code_llama_ls.syntax import LANGUAGES, parser_for

FUNCTION = DefinitionKind.FUNCTION
METHOD = DefinitionKind.METHOD
CLASS = DefinitionKind.CLASS
CONSTANT = DefinitionKind.CONSTANT

DefinitionRow = tuple[str, DefinitionKind, int, int, int, str | None]
ImportRow = tuple[str, str | None, str | None, int]


def definitions(outline: FileOutline) -> list[DefinitionRow]:
    """(name, kind, start_line, end_line, summary_end_line, container) per definition."""
    return [
        (d.name, d.kind, d.start_line, d.end_line, d.summary_end_line, d.container)
        for d in outline.definitions
    ]


def imports(outline: FileOutline) -> list[ImportRow]:
    """(module, name, alias, line) per import."""
    return [(i.module, i.name, i.alias, i.line) for i in outline.imports]


PYTHON = '''\
"""Shapes and their registry."""

from __future__ import annotations

import os
import os.path
import numpy as np
from .utils import helper as h, other
from . import sibling
from ..pkg.mod import *
from typing import (
    TYPE_CHECKING,
    Any as AnyType,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

MAX_SIZE = 100
registry: dict[str, type] = {
    "a": int,
}


@register
@functools.cache
def decorated(
    a: int,
    b: int,
) -> int:
    """Add two numbers.

    Longer text.
    """

    def nested() -> int:
        return a

    return a + b + nested()


class Shape(Base):
    """A shape."""

    sides = 0

    def __init__(self, name: str) -> None:
        self.name = name

    @property
    def area(self) -> float:
        # no docstring here
        return 0.0

    class Meta:
        ordering = ["name"]


def one_liner(): return 1
'''

PYTHON_DEFINITIONS: list[DefinitionRow] = [
    ("MAX_SIZE", CONSTANT, 18, 18, 18, None),
    ("registry", CONSTANT, 19, 21, 21, None),
    ("decorated", FUNCTION, 24, 38, 33, None),
    ("Shape", CLASS, 41, 55, 42, None),
    ("__init__", METHOD, 46, 47, 46, "Shape"),
    ("area", METHOD, 49, 52, 50, "Shape"),
    ("Meta", CLASS, 54, 55, 54, "Shape"),
    ("one_liner", FUNCTION, 58, 58, 58, None),
]

PYTHON_IMPORTS: list[ImportRow] = [
    ("os", None, None, 4),
    ("os.path", None, "os", 5),
    ("numpy", None, "np", 6),
    (".utils", "helper", "h", 7),
    (".utils", "other", None, 7),
    (".", "sibling", None, 8),
    ("..pkg.mod", "*", None, 9),
    ("typing", "TYPE_CHECKING", None, 10),
    ("typing", "Any", "AnyType", 10),
    ("collections.abc", "Iterator", None, 16),
]

JAVASCRIPT = """\
import React, { useState, useEffect as effect } from "react";
import * as path from "./path";
import "./side-effect.css";
const fs = require("fs");
const { join, resolve: res } = require("./paths");
const config = require("./config.json");

export const VERSION = "1.0";
let counter = 0;

export function add(a, b) {
  function inner() {}
  return a + b;
}

export const multiply = (a, b) => {
  return a * b;
};

const square = function (x) { return x * x; };

export default class Widget extends Base {
  static defaults = {};
  onClick = (event) => {
    this.clicked = true;
  };

  constructor(props) {
    super(props);
  }

  render() {
    const local = 1;
    return <div>{local}</div>;
  }
}

function* ids() {
  yield 1;
}
"""

JAVASCRIPT_DEFINITIONS: list[DefinitionRow] = [
    ("VERSION", CONSTANT, 7, 7, 7, None),
    ("counter", CONSTANT, 8, 8, 8, None),
    ("add", FUNCTION, 10, 13, 10, None),
    ("multiply", FUNCTION, 15, 17, 15, None),
    ("square", FUNCTION, 19, 19, 19, None),
    ("Widget", CLASS, 21, 35, 21, None),
    ("onClick", METHOD, 23, 25, 23, "Widget"),
    ("constructor", METHOD, 27, 29, 27, "Widget"),
    ("render", METHOD, 31, 34, 31, "Widget"),
    ("ids", FUNCTION, 37, 39, 37, None),
]

JAVASCRIPT_IMPORTS: list[ImportRow] = [
    ("react", "default", "React", 0),
    ("react", "useState", None, 0),
    ("react", "useEffect", "effect", 0),
    ("./path", "*", "path", 1),
    ("fs", None, None, 3),
    ("./paths", "join", None, 4),
    ("./paths", "resolve", "res", 4),
    ("./config.json", None, "config", 5),
]

TYPESCRIPT = """\
import type { Config } from "./config";
import { Logger } from "@app/logging";
import express = require("express");

export const DEFAULT_PORT: number = 8080;

export interface Service {
  start(port: number): Promise<void>;
  name: string;
}

export type Handler = (req: Request) => Response;

export enum Level {
  Debug,
  Info,
}

@Injectable({ providedIn: "root" })
export class HttpService implements Service {
  private readonly log = new Logger();
  name = "http";

  constructor(private config: Config) {}

  @Trace()
  async start(
    port: number,
  ): Promise<void> {
    const handler = () => port;
  }

  private stop = (): void => {};
}

export abstract class Repository<T> {
  abstract find(id: string): T;
}

declare function legacy(x: number): void;

export function createServer(config: Config): HttpService {
  return new HttpService(config);
}
"""

TYPESCRIPT_DEFINITIONS: list[DefinitionRow] = [
    ("DEFAULT_PORT", CONSTANT, 4, 4, 4, None),
    ("Service", CLASS, 6, 9, 6, None),
    ("start", METHOD, 7, 7, 7, "Service"),
    ("Handler", CLASS, 11, 11, 11, None),
    ("Level", CLASS, 13, 16, 13, None),
    ("HttpService", CLASS, 18, 33, 19, None),
    ("constructor", METHOD, 23, 23, 23, "HttpService"),
    ("start", METHOD, 25, 30, 28, "HttpService"),
    ("stop", METHOD, 32, 32, 32, "HttpService"),
    ("Repository", CLASS, 35, 37, 35, None),
    ("find", METHOD, 36, 36, 36, "Repository"),
    ("legacy", FUNCTION, 39, 39, 39, None),
    ("createServer", FUNCTION, 41, 43, 41, None),
]

TYPESCRIPT_IMPORTS: list[ImportRow] = [
    ("./config", "Config", None, 0),
    ("@app/logging", "Logger", None, 1),
    ("express", None, None, 2),
]

TSX = """\
import React, { type FC } from "react";

export const App: FC = () => {
  return <div className="app">{title}</div>;
};

export function Button({ label }: { label: string }) {
  return <button>{label}</button>;
}
"""

TSX_DEFINITIONS: list[DefinitionRow] = [
    ("App", FUNCTION, 2, 4, 2, None),
    ("Button", FUNCTION, 6, 8, 6, None),
]

TSX_IMPORTS: list[ImportRow] = [("react", "default", "React", 0), ("react", "FC", None, 0)]

GO = """\
package server

import "fmt"

import (
\t"net/http"
\tlog "github.com/sirupsen/logrus"
\t_ "github.com/lib/pq"
\t. "github.com/onsi/gomega"
)

const DefaultPort = 8080

const (
\tModeDev  = "dev"
\tModeProd = "prod"
)

var ErrClosed = fmt.Errorf("closed")

// Server serves HTTP.
type Server struct {
\taddr string
\tmux  *http.ServeMux
}

type Handler interface {
\tHandle(w http.ResponseWriter)
}

type ID = string

// Start starts the server.
func (s *Server) Start() error {
\tconst local = 1
\thelper := func() {}
\thelper()
\treturn nil
}

func (s Server) Addr() string { return s.addr }

func New(
\taddr string,
) *Server {
\treturn &Server{addr: addr}
}
"""

GO_DEFINITIONS: list[DefinitionRow] = [
    ("DefaultPort", CONSTANT, 11, 11, 11, None),
    ("ModeDev", CONSTANT, 14, 14, 14, None),
    ("ModeProd", CONSTANT, 15, 15, 15, None),
    ("ErrClosed", CONSTANT, 18, 18, 18, None),
    ("Server", CLASS, 21, 24, 21, None),
    ("Handler", CLASS, 26, 28, 26, None),
    ("Handle", METHOD, 27, 27, 27, "Handler"),
    ("ID", CLASS, 30, 30, 30, None),
    ("Start", METHOD, 33, 38, 33, "Server"),
    ("Addr", METHOD, 40, 40, 40, "Server"),
    ("New", FUNCTION, 42, 46, 44, None),
]

GO_IMPORTS: list[ImportRow] = [
    ("fmt", None, None, 2),
    ("net/http", None, None, 5),
    ("github.com/sirupsen/logrus", None, "log", 6),
    ("github.com/onsi/gomega", "*", None, 8),
]

RUST = """\
use std::collections::HashMap;
use std::io;
use crate::config::{Config, Mode as RunMode, loader::{self, Loader}};
use super::util::*;
mod parser;

pub const MAX_RETRIES: u32 = 3;
static GREETING: &str = "hi";

/// A connection pool.
#[derive(Debug, Clone)]
#[allow(dead_code)]
pub struct Pool<T> {
    items: Vec<T>,
}

pub enum State {
    Idle,
    Busy,
}

pub trait Resource {
    fn reset(&mut self);
    fn id(&self) -> u64 {
        0
    }
}

impl<T: Clone> Pool<T> {
    pub fn new() -> Self {
        fn helper() {}
        Pool { items: Vec::new() }
    }

    #[inline]
    pub fn len(&self) -> usize {
        self.items.len()
    }
}

impl Resource for Pool<u8> {
    fn reset(&mut self) {}
}

pub type Result<T> = std::result::Result<T, io::Error>;

pub fn connect(
    url: &str,
) -> Result<Pool<u8>> {
    todo!()
}

#[cfg(test)]
mod tests {
    fn hidden() {}
}
"""

RUST_DEFINITIONS: list[DefinitionRow] = [
    ("MAX_RETRIES", CONSTANT, 6, 6, 6, None),
    ("GREETING", CONSTANT, 7, 7, 7, None),
    ("Pool", CLASS, 10, 14, 12, None),
    ("State", CLASS, 16, 19, 16, None),
    ("Resource", CLASS, 21, 26, 21, None),
    ("reset", METHOD, 22, 22, 22, "Resource"),
    ("id", METHOD, 23, 25, 23, "Resource"),
    ("new", METHOD, 29, 32, 29, "Pool"),
    ("len", METHOD, 34, 37, 35, "Pool"),
    ("reset", METHOD, 41, 41, 41, "Pool"),
    ("Result", CLASS, 44, 44, 44, None),
    ("connect", FUNCTION, 46, 50, 48, None),
]

RUST_IMPORTS: list[ImportRow] = [
    ("std::collections", "HashMap", None, 0),
    ("std", "io", None, 1),
    ("crate::config", "Config", None, 2),
    ("crate::config", "Mode", "RunMode", 2),
    ("crate::config::loader", None, None, 2),
    ("crate::config::loader", "Loader", None, 2),
    ("super::util", "*", None, 3),
    ("parser", None, None, 4),
]

JAVA = """\
package com.example.shop;

import java.util.List;
import java.util.concurrent.*;
import static java.util.Objects.requireNonNull;

/** A shopping cart. */
@Entity
@Table(name = "carts")
public class Cart extends Base {
    public static final int MAX_ITEMS = 50;
    private static final String PREFIX = "cart-", SUFFIX = "";
    private final List<Item> items;
    static int instances;

    public Cart(List<Item> items) {
        this.items = requireNonNull(items);
    }

    @Override
    public String toString() {
        Runnable r = new Runnable() {
            public void run() {}
        };
        return PREFIX;
    }

    public interface Listener {
        int PRIORITY = 1;
        void onChange(Cart cart);
    }

    enum Status {
        OPEN, CLOSED;

        boolean isOpen() { return this == OPEN; }
    }

    abstract static class Rule {
        abstract boolean applies(
            Item item
        );
    }
}
"""

JAVA_DEFINITIONS: list[DefinitionRow] = [
    ("Cart", CLASS, 7, 43, 9, None),
    ("MAX_ITEMS", CONSTANT, 10, 10, 10, "Cart"),
    ("PREFIX", CONSTANT, 11, 11, 11, "Cart"),
    ("SUFFIX", CONSTANT, 11, 11, 11, "Cart"),
    ("Cart", METHOD, 15, 17, 15, "Cart"),
    ("toString", METHOD, 19, 25, 20, "Cart"),
    ("Listener", CLASS, 27, 30, 27, "Cart"),
    ("PRIORITY", CONSTANT, 28, 28, 28, "Listener"),
    ("onChange", METHOD, 29, 29, 29, "Listener"),
    ("Status", CLASS, 32, 36, 32, "Cart"),
    ("isOpen", METHOD, 35, 35, 35, "Status"),
    ("Rule", CLASS, 38, 42, 38, "Cart"),
    ("applies", METHOD, 39, 41, 41, "Rule"),
]

JAVA_IMPORTS: list[ImportRow] = [
    ("java.util", "List", None, 2),
    ("java.util.concurrent", "*", None, 3),
    ("java.util.Objects", "requireNonNull", None, 4),
]

C = """\
#ifndef LIST_H
#define LIST_H
#include <stdio.h>
#include "node.h"

#define MAX_NODES 128
#define SQUARE(x) ((x) * (x))

static const int limit = 10;
char *names[] = {"a", "b"};

typedef unsigned long size_type;

typedef struct {
    int x, y;
} Point;

struct node {
    int value;
    struct node *next;
};

enum color { RED, GREEN };

int add(int a, int b);

static char *
duplicate(const char *s)
{
    static int calls = 0;
    return 0;
}
#endif
"""

C_DEFINITIONS: list[DefinitionRow] = [
    ("MAX_NODES", CONSTANT, 5, 5, 5, None),
    ("SQUARE", FUNCTION, 6, 6, 6, None),
    ("limit", CONSTANT, 8, 8, 8, None),
    ("names", CONSTANT, 9, 9, 9, None),
    ("size_type", CLASS, 11, 11, 11, None),
    ("Point", CLASS, 13, 15, 13, None),
    ("node", CLASS, 17, 20, 17, None),
    ("color", CLASS, 22, 22, 22, None),
    ("add", FUNCTION, 24, 24, 24, None),
    ("duplicate", FUNCTION, 26, 31, 28, None),
]

C_IMPORTS: list[ImportRow] = [("<stdio.h>", "*", None, 2), ("node.h", "*", None, 3)]

CPP = """\
#include <vector>
#include "shape.hpp"

using namespace std;
using std::string;

namespace geo {

constexpr double PI = 3.14159;

template <typename T>
class Stack : public Container {
 public:
  Stack();
  void push(const T& value) {
    items_.push_back(value);
  }
  size_t size() const;

 private:
  std::vector<T> items_;
};

template <typename T>
size_t Stack<T>::size() const {
  return items_.size();
}

struct Point {
  double x;
  double y;
};

double area(const Shape& shape) {
  auto twice = [](double v) { return v * 2; };
  return twice(shape.width());
}

}  // namespace geo
"""

CPP_DEFINITIONS: list[DefinitionRow] = [
    ("PI", CONSTANT, 8, 8, 8, None),
    ("Stack", CLASS, 10, 21, 11, None),
    ("Stack", METHOD, 13, 13, 13, "Stack"),
    ("push", METHOD, 14, 16, 14, "Stack"),
    ("size", METHOD, 17, 17, 17, "Stack"),
    ("size", METHOD, 23, 26, 24, "Stack"),
    ("Point", CLASS, 28, 31, 28, None),
    ("area", FUNCTION, 33, 36, 33, None),
]

CPP_IMPORTS: list[ImportRow] = [
    ("<vector>", "*", None, 0),
    ("shape.hpp", "*", None, 1),
    ("std", "*", None, 3),
    ("std", "string", None, 4),
]

CASES: dict[str, tuple[str, list[DefinitionRow], list[ImportRow]]] = {
    "python": (PYTHON, PYTHON_DEFINITIONS, PYTHON_IMPORTS),
    "javascript": (JAVASCRIPT, JAVASCRIPT_DEFINITIONS, JAVASCRIPT_IMPORTS),
    "typescript": (TYPESCRIPT, TYPESCRIPT_DEFINITIONS, TYPESCRIPT_IMPORTS),
    "tsx": (TSX, TSX_DEFINITIONS, TSX_IMPORTS),
    "go": (GO, GO_DEFINITIONS, GO_IMPORTS),
    "rust": (RUST, RUST_DEFINITIONS, RUST_IMPORTS),
    "java": (JAVA, JAVA_DEFINITIONS, JAVA_IMPORTS),
    "c": (C, C_DEFINITIONS, C_IMPORTS),
    "cpp": (CPP, CPP_DEFINITIONS, CPP_IMPORTS),
}


@pytest.mark.parametrize("language", CASES)
def test_definitions(language: str) -> None:
    text, expected, _ = CASES[language]
    assert definitions(outline_file(text, language)) == expected


@pytest.mark.parametrize("language", CASES)
def test_imports(language: str) -> None:
    text, _, expected = CASES[language]
    outline = outline_file(text, language)
    assert outline.language == language
    assert imports(outline) == expected


def test_every_language_has_a_query() -> None:
    assert set(CASES) == set(LANGUAGES)
    for language in LANGUAGES:
        assert outline_file("", language) == FileOutline(language, (), ())


@pytest.mark.parametrize(
    ("language", "local_names"),
    [
        (
            "python",
            [
                "os",
                "os",
                "np",
                "h",
                "other",
                "sibling",
                None,
                "TYPE_CHECKING",
                "AnyType",
                "Iterator",
            ],
        ),
        ("javascript", ["React", "useState", "effect", "path", "fs", "join", "res", "config"]),
        ("go", ["fmt", "http", "log", None]),
        ("rust", ["HashMap", "io", "Config", "RunMode", "loader", "Loader", None, "parser"]),
        ("c", [None, None]),
    ],
)
def test_local_names_of_extracted_imports(language: str, local_names: list[str | None]) -> None:
    outline = outline_file(CASES[language][0], language)
    assert [item.local_name for item in outline.imports] == local_names


def test_alias_equal_to_the_bound_name_is_dropped() -> None:
    text = "from a import b as b\nimport c as c\n"
    assert imports(outline_file(text, "python")) == [("a", "b", None, 0), ("c", None, None, 1)]
    go = 'package p\n\nimport fmt "fmt"\n'
    assert imports(outline_file(go, "go")) == [("fmt", None, None, 2)]


def test_non_ascii_text_keeps_names_and_lines() -> None:
    text = '# é à ü\nNAMÉ = "ünïcödé"\n\ndef café(x):\n    """Crème."""\n    return x\n'
    assert definitions(outline_file(text, "python")) == [
        ("NAMÉ", CONSTANT, 1, 1, 1, None),
        ("café", FUNCTION, 3, 5, 4, None),
    ]


BROKEN: dict[str, str] = {
    "python": "def before():\n    return 1\n\n\ndef broken(x, :\n    return (\n\n\n"
    "def after():\n    return 2\n",
    "typescript": "function before(): number { return 1; }\nconst x: = ;\n"
    "function after(): number { return 2; }\n",
    "go": "package p\n\nfunc before() int { return 1 }\n\nfunc broken( int {\n\treturn\n}\n\n"
    "func after() int { return 2 }\n",
    "rust": "fn before() -> u32 { 1 }\n\nfn broken(x: -> {\n}\n\nfn after() -> u32 { 2 }\n",
    "java": "class A {\n  int before() { return 1; }\n  int broken( { return; }\n"
    "  int after() { return 2; }\n}\n",
    "c": "int before(void) { return 1; }\nint broken(int x { return x; }\n"
    "int after(void) { return 2; }\n",
}


@pytest.mark.parametrize("language", BROKEN)
def test_broken_code_keeps_the_definitions_that_parse(language: str) -> None:
    outline = outline_file(BROKEN[language], language)
    names = [d.name for d in outline.definitions]
    assert "before" in names
    assert "after" in names


def test_code_being_typed_at_the_end_of_a_file() -> None:
    text = "import os\n\ndef done():\n    return 1\n\ndef typing_now(a, b\n"
    outline = outline_file(text, "python")
    assert definitions(outline)[0] == ("done", FUNCTION, 2, 3, 2, None)
    assert imports(outline) == [("os", None, None, 0)]


@pytest.mark.parametrize("language", LANGUAGES)
def test_junk_never_raises(language: str) -> None:
    for junk in ["\x00\x01", "def", "class :", "@", "import", "{{{{", "}}}", "é" * 3]:
        assert outline_file(junk, language).language == language


def test_a_given_tree_is_used() -> None:
    tree = parser_for("python").parse(PYTHON.encode("utf-8"))
    assert outline_file(PYTHON, "python", tree) == outline_file(PYTHON, "python")


def test_a_stale_tree_does_not_raise() -> None:
    tree = parser_for("rust").parse(RUST.encode("utf-8"))
    outline_file("fn f() {}\n", "rust", tree)


@pytest.mark.parametrize("language", ["cobol", "", "Python", "typescriptreact"])
def test_unknown_language_raises(language: str) -> None:
    with pytest.raises(ValueError, match="no outline query"):
        outline_file("x = 1\n", language)


def test_a_5000_line_file_outlines() -> None:
    chunk = '''\
class Model{i}(Base):
    """Model number {i}."""

    LIMIT = {i}

    def method_a(self, x: int) -> int:
        return x + {i}

    @property
    def value(self) -> int:
        return {i}


def helper_{i}(a, b):
    return [a, b, {i}]


CONSTANT_{i} = {i}
'''
    text = "import os\nfrom .base import Base\n\n" + "".join(chunk.format(i=i) for i in range(280))
    assert text.count("\n") > 5000
    outline = outline_file(text, "python")
    assert len(outline.definitions) == 280 * 5
    assert outline.definitions[-1].name == "CONSTANT_279"
    assert [d.kind for d in outline.definitions[:5]] == [CLASS, METHOD, METHOD, FUNCTION, CONSTANT]
    assert len(outline.imports) == 2


def test_timing_of_a_large_real_file() -> None:
    """Prints how long a ~6,400-line stdlib module takes (run with -s); asserts nothing on time."""
    path = Path(sysconfig.get_paths()["stdlib"]) / "_pydecimal.py"
    if not path.is_file():
        pytest.skip(f"{path} is not there")
    text = path.read_text(encoding="utf-8")
    outline_file("x = 1\n", "python")  # grammar loaded and query compiled
    started = time.perf_counter()
    outline = outline_file(text, "python")
    elapsed = time.perf_counter() - started
    print(
        f"\noutline of {path.name}: {text.count(chr(10))} lines, "
        f"{len(outline.definitions)} definitions, {len(outline.imports)} imports "
        f"in {elapsed * 1000:.1f} ms"
    )
    assert outline.definitions
