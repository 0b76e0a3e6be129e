"""ImportResolver: imports resolved to the workspace files that define them, per language."""

from __future__ import annotations

from pathlib import Path

import pytest

from code_llama_ls.context.imports import ImportResolver
from code_llama_ls.context.outline import Import


class Workspace:
    """Real files under a temporary directory, every one of them added to a resolver."""

    def __init__(self, root: Path, files: dict[str, str]) -> None:
        self.root = root
        self.reads: list[str] = []
        self.resolver = ImportResolver(self._read)
        for rel, text in files.items():
            self.write(rel, text)

    def _read(self, path: str) -> str | None:
        self.reads.append(path)
        file = Path(path)
        return file.read_text() if file.is_file() else None

    def path(self, rel: str) -> str:
        return (self.root / rel).as_posix()

    def write(self, rel: str, text: str = "") -> None:
        """Create or change a file and tell the resolver."""
        file = self.root / rel
        file.parent.mkdir(parents=True, exist_ok=True)
        file.write_text(text)
        self.resolver.add(self.path(rel))

    def delete(self, rel: str) -> None:
        (self.root / rel).unlink()
        self.resolver.remove(self.path(rel))

    def resolve(
        self,
        importer: str,
        language: str,
        module: str,
        name: str | None = None,
        alias: str | None = None,
    ) -> list[str]:
        """Resolved paths relative to the workspace root."""
        found = self.resolver.resolve(self.path(importer), language, Import(module, name, alias, 0))
        return [Path(p).relative_to(self.root).as_posix() for p in found]


def workspace(tmp_path: Path, *files: str | tuple[str, str]) -> Workspace:
    """A workspace of files given as a relative path (empty file) or (path, text)."""
    return Workspace(tmp_path, dict(f if isinstance(f, tuple) else (f, "") for f in files))


# ----------------------------------------------------------------------------- Python

PYTHON_TREE = (
    "app/__init__.py",
    "app/main.py",
    "app/utils.py",
    "app/models/__init__.py",
    "app/models/user.py",
    "app/models/sub/__init__.py",
    "app/models/sub/deep.py",
    "app/stubs.pyi",
    "app/json.py",
    "scripts/tool.py",
)


@pytest.mark.parametrize(
    ("importer", "module", "name", "expected"),
    [
        # relative
        ("app/main.py", ".utils", "helper", ["app/utils.py"]),
        ("app/main.py", ".", "utils", ["app/utils.py", "app/__init__.py"]),
        ("app/main.py", ".", "VERSION", ["app/__init__.py"]),
        ("app/models/user.py", "..utils", "helper", ["app/utils.py"]),
        ("app/models/sub/deep.py", "...", "main", ["app/main.py", "app/__init__.py"]),
        (
            "app/models/user.py",
            ".sub",
            "deep",
            ["app/models/sub/deep.py", "app/models/sub/__init__.py"],
        ),
        ("app/main.py", ".models", "*", ["app/models/__init__.py"]),
        ("app/main.py", ".stubs", "Thing", ["app/stubs.pyi"]),
        ("app/main.py", ".missing", "x", []),
        # absolute
        ("scripts/tool.py", "app.utils", None, ["app/utils.py"]),
        ("scripts/tool.py", "app.models", None, ["app/models/__init__.py"]),
        ("scripts/tool.py", "app.models", "user", ["app/models/user.py", "app/models/__init__.py"]),
        ("scripts/tool.py", "app.models", "User", ["app/models/__init__.py"]),
        ("scripts/tool.py", "app", "main", ["app/main.py", "app/__init__.py"]),
        ("app/main.py", "app.models.sub.deep", None, ["app/models/sub/deep.py"]),
        # external: stdlib and third-party, even when a package has a same-named module
        ("app/main.py", "json", None, []),
        ("app/main.py", "os.path", None, []),
        ("app/main.py", "numpy", "array", []),
        ("app/main.py", "__future__", "annotations", []),
    ],
)
def test_python(
    tmp_path: Path, importer: str, module: str, name: str | None, expected: list[str]
) -> None:
    ws = workspace(tmp_path, *PYTHON_TREE)
    assert ws.resolve(importer, "python", module, name) == expected


def test_python_import_binding_the_top_package(tmp_path: Path) -> None:
    ws = workspace(tmp_path, *PYTHON_TREE)
    assert ws.resolve("scripts/tool.py", "python", "app.models.user", alias="app") == [
        "app/models/user.py"
    ]


def test_python_src_layout_and_tests_outside_it(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "proj/src/mylib/__init__.py",
        "proj/src/mylib/core.py",
        "proj/src/mylib/io/__init__.py",
        "proj/tests/test_core.py",
        "proj/tests/helpers.py",
    )
    assert ws.resolve("proj/tests/test_core.py", "python", "mylib.core", "run") == [
        "proj/src/mylib/core.py"
    ]
    assert ws.resolve("proj/tests/test_core.py", "python", "mylib", "io") == [
        "proj/src/mylib/io/__init__.py",
        "proj/src/mylib/__init__.py",
    ]
    # rootdir-style imports of a test helper module
    assert ws.resolve("proj/tests/test_core.py", "python", "helpers", "make") == [
        "proj/tests/helpers.py"
    ]


def test_python_two_roots_prefer_the_importers_own(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "one/shared/__init__.py",
        "one/shared/config.py",
        "one/app.py",
        "two/shared/__init__.py",
        "two/shared/config.py",
        "two/app.py",
    )
    assert ws.resolve("one/app.py", "python", "shared.config") == ["one/shared/config.py"]
    assert ws.resolve("two/app.py", "python", "shared.config") == ["two/shared/config.py"]
    assert ws.resolve("two/app.py", "python", "shared", "config") == [
        "two/shared/config.py",
        "two/shared/__init__.py",
    ]


def test_python_package_beats_module_and_source_beats_stub(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path, "lib/__init__.py", "lib/__init__.pyi", "lib/a.py", "lib/a.pyi", "main.py"
    )
    assert ws.resolve("main.py", "python", "lib") == ["lib/__init__.py"]
    assert ws.resolve("main.py", "python", "lib.a") == ["lib/a.py"]


def test_python_project_that_is_itself_a_package(tmp_path: Path) -> None:
    """A stray __init__.py at the top does not hide the project's own packages."""
    ws = workspace(
        tmp_path, "repo/__init__.py", "repo/main.py", "repo/pkg/__init__.py", "repo/pkg/mod.py"
    )
    assert ws.resolve("repo/main.py", "python", "pkg", "mod") == [
        "repo/pkg/mod.py",
        "repo/pkg/__init__.py",
    ]


def test_the_importer_itself_is_never_returned(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path, "pkg/__init__.py", "pkg/mod.py", "crate/Cargo.toml", "crate/src/lib.rs"
    )
    assert ws.resolve("pkg/mod.py", "python", ".", "mod") == ["pkg/__init__.py"]
    assert ws.resolve("pkg/__init__.py", "python", ".", "mod") == ["pkg/mod.py"]
    assert ws.resolve("pkg/__init__.py", "python", ".", "NAME") == []
    assert ws.resolve("crate/src/lib.rs", "rust", "self", "Item") == []


def test_python_relative_import_past_the_root(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "a.py")
    importer = ws.path("a.py")
    dots = "." * (importer.count("/") + 3)
    assert ws.resolver.resolve(importer, "python", Import(dots, "x", None, 0)) == ()


# ----------------------------------------------------------------------------- JS / TS

JS_TREE = (
    "web/src/app.ts",
    "web/src/util.ts",
    "web/src/view.tsx",
    "web/src/types.d.ts",
    "web/src/legacy.js",
    "web/src/esm.mjs",
    "web/src/widgets/index.ts",
    "web/src/widgets/button.tsx",
    "web/src/styles.css",
    "web/lib/old.js",
    "web/lib/index.js",
)


@pytest.mark.parametrize(
    ("importer", "language", "module", "expected"),
    [
        ("web/src/app.ts", "typescript", "./util", ["web/src/util.ts"]),
        ("web/src/app.ts", "typescript", "./view", ["web/src/view.tsx"]),
        ("web/src/app.ts", "typescript", "./types", ["web/src/types.d.ts"]),
        ("web/src/app.ts", "typescript", "./legacy", ["web/src/legacy.js"]),
        ("web/src/app.ts", "typescript", "./esm", ["web/src/esm.mjs"]),
        ("web/src/app.ts", "typescript", "./widgets", ["web/src/widgets/index.ts"]),
        ("web/src/app.ts", "typescript", "./widgets/", ["web/src/widgets/index.ts"]),
        ("web/src/app.ts", "typescript", "./widgets/button", ["web/src/widgets/button.tsx"]),
        ("web/src/widgets/button.tsx", "tsx", "..", []),
        ("web/src/widgets/button.tsx", "tsx", "../util", ["web/src/util.ts"]),
        ("web/src/widgets/button.tsx", "tsx", ".", ["web/src/widgets/index.ts"]),
        ("web/src/widgets/button.tsx", "tsx", "../../lib", ["web/lib/index.js"]),
        # ESM TypeScript writes the emitted name
        ("web/src/app.ts", "typescript", "./util.js", ["web/src/util.ts"]),
        ("web/src/app.ts", "typescript", "./view.jsx", ["web/src/view.tsx"]),
        ("web/src/app.ts", "typescript", "./widgets/index.js", ["web/src/widgets/index.ts"]),
        ("web/src/app.ts", "typescript", "./legacy.js", ["web/src/legacy.js"]),
        ("web/src/app.ts", "typescript", "./styles.css", ["web/src/styles.css"]),
        ("web/src/app.ts", "typescript", "./styles.css?inline", ["web/src/styles.css"]),
        ("web/lib/old.js", "javascript", "./index", ["web/lib/index.js"]),
        ("web/lib/old.js", "javascript", "../src/util", ["web/src/util.ts"]),
        # external
        ("web/src/app.ts", "typescript", "react", []),
        ("web/src/app.ts", "typescript", "node:fs", []),
        ("web/src/app.ts", "typescript", "./nope", []),
        ("web/src/app.ts", "typescript", "https://esm.sh/x", []),
    ],
)
def test_js_relative(
    tmp_path: Path, importer: str, language: str, module: str, expected: list[str]
) -> None:
    ws = workspace(tmp_path, *JS_TREE)
    assert ws.resolve(importer, language, module, "default") == expected


def test_js_prefers_the_exact_file_for_javascript_and_the_source_for_typescript(
    tmp_path: Path,
) -> None:
    ws = workspace(tmp_path, "p/a.ts", "p/b.ts", "p/b.js", "p/c.js")
    assert ws.resolve("p/a.ts", "typescript", "./b.js") == ["p/b.ts"]
    assert ws.resolve("p/c.js", "javascript", "./b.js") == ["p/b.js"]
    assert ws.resolve("p/c.js", "javascript", "./b") == ["p/b.ts"]


TSCONFIG = """{
  // editor-written config: comments and trailing commas
  "compilerOptions": {
    "baseUrl": ".", /* paths below are relative to this */
    "paths": {
      "@/*": ["src/*"],
      "@components/*": ["src/widgets/*", "src/fallback/*",],
      "config": ["src/config/index.ts"],
      "url-like": ["src/http://not-a-comment"],
    },
  },
}
"""


def test_tsconfig_paths_and_base_url(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "app/src/main.ts",
        "app/src/deep/nested/file.ts",
        "app/src/util/strings.ts",
        "app/src/widgets/card.tsx",
        "app/src/fallback/badge.ts",
        "app/src/config/index.ts",
        "app/src/direct.ts",
        ("app/tsconfig.json", TSCONFIG),
    )
    importer = "app/src/deep/nested/file.ts"
    assert ws.resolve(importer, "typescript", "@/util/strings") == ["app/src/util/strings.ts"]
    assert ws.resolve(importer, "typescript", "@components/card") == ["app/src/widgets/card.tsx"]
    assert ws.resolve(importer, "typescript", "@components/badge") == ["app/src/fallback/badge.ts"]
    assert ws.resolve(importer, "typescript", "config") == ["app/src/config/index.ts"]
    # baseUrl alone
    assert ws.resolve(importer, "typescript", "src/direct") == ["app/src/direct.ts"]
    assert ws.resolve(importer, "typescript", "@/missing") == []
    assert ws.resolve(importer, "typescript", "lodash") == []


def test_tsconfig_extends_and_the_nearest_config(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "repo/packages/app/src/main.ts",
        "repo/packages/app/src/lib/x.ts",
        "repo/shared/y.ts",
        ("repo/tsconfig.base.json", '{"compilerOptions": {"paths": {"~shared/*": ["shared/*"]}}}'),
        (
            "repo/packages/app/tsconfig.json",
            '{"extends": "../../tsconfig.base", "compilerOptions": {"baseUrl": "src"}}',
        ),
    )
    importer = "repo/packages/app/src/main.ts"
    # baseUrl from the package's own config; paths from the base, relative to that baseUrl
    assert ws.resolve(importer, "typescript", "lib/x") == ["repo/packages/app/src/lib/x.ts"]
    assert ws.resolve(importer, "typescript", "~shared/y") == []


def test_tsconfig_extends_paths_relative_to_the_base_config(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "repo/packages/app/src/main.ts",
        "repo/shared/y.ts",
        ("repo/tsconfig.base.json", '{"compilerOptions": {"paths": {"~shared/*": ["shared/*"]}}}'),
        ("repo/packages/app/tsconfig.json", '{"extends": "../../tsconfig.base.json"}'),
    )
    assert ws.resolve("repo/packages/app/src/main.ts", "typescript", "~shared/y") == [
        "repo/shared/y.ts"
    ]


def test_broken_tsconfig_is_ignored(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "app/src/main.ts",
        "app/src/util.ts",
        ("app/tsconfig.json", '{"compilerOptions": {"baseUrl": "src", '),
    )
    assert ws.resolve("app/src/main.ts", "typescript", "util") == []
    assert ws.resolve("app/src/main.ts", "typescript", "./util") == ["app/src/util.ts"]


def test_monorepo_packages_by_name(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "mono/packages/core/src/index.ts",
        "mono/packages/core/src/math.ts",
        "mono/packages/ui/lib/main.js",
        "mono/packages/ui/lib/theme.js",
        "mono/packages/cli/src/bin.ts",
        "mono/node_modules/leftpad/index.js",
        ("mono/package.json", '{"name": "mono-root", "private": true}'),
        ("mono/packages/core/package.json", '{"name": "@acme/core", "main": "dist/index.js"}'),
        ("mono/packages/ui/package.json", '{"name": "ui-kit", "main": "./lib/main.js"}'),
        ("mono/packages/cli/package.json", '{"name": "cli"}'),
        ("mono/node_modules/leftpad/package.json", '{"name": "leftpad", "main": "index.js"}'),
    )
    importer = "mono/packages/cli/src/bin.ts"
    # main points at build output that is not in the workspace: the sources' index
    assert ws.resolve(importer, "typescript", "@acme/core") == ["mono/packages/core/src/index.ts"]
    assert ws.resolve(importer, "typescript", "@acme/core/math") == [
        "mono/packages/core/src/math.ts"
    ]
    assert ws.resolve(importer, "typescript", "ui-kit") == ["mono/packages/ui/lib/main.js"]
    assert ws.resolve(importer, "typescript", "ui-kit/lib/theme") == [
        "mono/packages/ui/lib/theme.js"
    ]
    assert ws.resolve(importer, "typescript", "leftpad") == []
    assert ws.resolve(importer, "typescript", "@acme/other") == []


def test_package_exports_and_types(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "m/a/src/entry.ts",
        "m/a/types/api.d.ts",
        "m/b/x.ts",
        ("m/a/package.json", '{"name": "a", "exports": {".": {"import": "./src/entry.ts"}}}'),
        ("m/b/package.json", '{"name": "b", "types": "types/missing.d.ts"}'),
    )
    assert ws.resolve("m/b/x.ts", "typescript", "a") == ["m/a/src/entry.ts"]


# ----------------------------------------------------------------------------- Go

GO_MOD = "module github.com/acme/proj // the main module\n\ngo 1.22\n"


def go_workspace(tmp_path: Path) -> Workspace:
    return workspace(
        tmp_path,
        "proj/main.go",
        "proj/pkg/util/strings.go",
        "proj/pkg/util/bytes.go",
        "proj/pkg/util/strings_test.go",
        "proj/pkg/util/README.md",
        "proj/pkg/util/inner/x.go",
        "proj/tools/gen/gen.go",
        ("proj/go.mod", GO_MOD),
        ("proj/tools/go.mod", 'module "github.com/acme/proj/tools"\n'),
    )


@pytest.mark.parametrize(
    ("module", "expected"),
    [
        ("github.com/acme/proj/pkg/util", ["proj/pkg/util/bytes.go", "proj/pkg/util/strings.go"]),
        ("github.com/acme/proj/pkg/util/inner", ["proj/pkg/util/inner/x.go"]),
        ("github.com/acme/proj/tools/gen", ["proj/tools/gen/gen.go"]),
        ("github.com/acme/proj/missing", []),
        ("github.com/acme/projector/pkg", []),
        ("fmt", []),
        ("golang.org/x/sync/errgroup", []),
        ("", []),
    ],
)
def test_go(tmp_path: Path, module: str, expected: list[str]) -> None:
    ws = go_workspace(tmp_path)
    assert ws.resolve("proj/main.go", "go", module, alias="u") == expected


def test_go_mod_change_updates_the_module_path(tmp_path: Path) -> None:
    ws = go_workspace(tmp_path)
    old, new = "github.com/acme/proj/pkg/util/inner", "example.com/renamed/pkg/util/inner"
    assert ws.resolve("proj/main.go", "go", old) == ["proj/pkg/util/inner/x.go"]
    assert ws.resolve("proj/main.go", "go", new) == []
    ws.write("proj/go.mod", "module example.com/renamed\n")
    assert ws.resolve("proj/main.go", "go", old) == []
    assert ws.resolve("proj/main.go", "go", new) == ["proj/pkg/util/inner/x.go"]
    ws.delete("proj/go.mod")
    assert ws.resolve("proj/main.go", "go", new) == []


# ----------------------------------------------------------------------------- Rust

RUST_TREE = (
    "crate/src/lib.rs",
    "crate/src/main.rs",
    "crate/src/net.rs",
    "crate/src/net/tcp.rs",
    "crate/src/net/udp/mod.rs",
    "crate/src/net/udp/packet.rs",
    "crate/src/util/mod.rs",
    "crate/src/util/fmt.rs",
    "crate/src/orphan/leaf.rs",
    "crate/src/orphan/leaf/child.rs",
    "crate/src/bin/tool.rs",
    "crate/src/bin/helper.rs",
    "crate/tests/it.rs",
    "crate/tests/common/mod.rs",
    "other/src/lib.rs",
    "other/src/api.rs",
)


@pytest.mark.parametrize(
    ("importer", "module", "name", "expected"),
    [
        # crate::
        ("crate/src/util/fmt.rs", "crate::net", "tcp", ["crate/src/net/tcp.rs"]),
        ("crate/src/util/fmt.rs", "crate::net::tcp", "connect", ["crate/src/net/tcp.rs"]),
        ("crate/src/util/fmt.rs", "crate::net::udp", "Packet", ["crate/src/net/udp/mod.rs"]),
        ("crate/src/lib.rs", "crate::net::udp::packet", "*", ["crate/src/net/udp/packet.rs"]),
        ("crate/src/util/fmt.rs", "crate::net", "Socket", ["crate/src/net.rs"]),
        ("crate/src/util/fmt.rs", "crate::net::missing::deep", "X", ["crate/src/net.rs"]),
        ("crate/src/util/fmt.rs", "crate", "VERSION", ["crate/src/lib.rs"]),
        ("crate/src/net.rs", "crate::util", "fmt", ["crate/src/util/fmt.rs"]),
        # self:: and super::
        ("crate/src/net.rs", "self::tcp", "connect", ["crate/src/net/tcp.rs"]),
        ("crate/src/net/udp/mod.rs", "self::packet", "Packet", ["crate/src/net/udp/packet.rs"]),
        ("crate/src/net/udp/packet.rs", "super", "Header", ["crate/src/net/udp/mod.rs"]),
        ("crate/src/net/udp/packet.rs", "super::super::tcp", "*", ["crate/src/net/tcp.rs"]),
        ("crate/src/net/tcp.rs", "super::udp", "packet", ["crate/src/net/udp/packet.rs"]),
        ("crate/src/net/tcp.rs", "super", "*", ["crate/src/net.rs"]),
        ("crate/src/util/fmt.rs", "super::super", "VERSION", ["crate/src/lib.rs"]),
        ("crate/src/util/fmt.rs", "super::super::super", "X", []),
        # mod declarations and paths through child modules
        ("crate/src/lib.rs", "net", None, ["crate/src/net.rs"]),
        ("crate/src/lib.rs", "util", None, ["crate/src/util/mod.rs"]),
        ("crate/src/net.rs", "udp", None, ["crate/src/net/udp/mod.rs"]),
        ("crate/src/net/udp/mod.rs", "packet", None, ["crate/src/net/udp/packet.rs"]),
        ("crate/src/lib.rs", "net::tcp", "connect", ["crate/src/net/tcp.rs"]),
        ("crate/src/lib.rs", "missing", None, []),
        # a module whose parent has no file (`#[path]`, a half-written tree)
        ("crate/src/orphan/leaf.rs", "child", None, ["crate/src/orphan/leaf/child.rs"]),
        ("crate/src/orphan/leaf.rs", "self::child", "f", ["crate/src/orphan/leaf/child.rs"]),
        # binaries and integration tests are crates of their own
        ("crate/src/bin/tool.rs", "helper", None, ["crate/src/bin/helper.rs"]),
        ("crate/tests/it.rs", "common", None, ["crate/tests/common/mod.rs"]),
        # workspace crates by name, external crates
        ("crate/tests/it.rs", "other::api", "Client", ["other/src/api.rs"]),
        ("crate/src/net.rs", "other", "Thing", ["other/src/lib.rs"]),
        ("crate/src/net.rs", "serde", "Serialize", []),
        ("crate/src/net.rs", "std::collections", "HashMap", []),
        ("crate/src/net.rs", "::serde", "Serialize", []),
    ],
)
def test_rust(
    tmp_path: Path, importer: str, module: str, name: str | None, expected: list[str]
) -> None:
    ws = workspace(
        tmp_path,
        *RUST_TREE,
        ("crate/Cargo.toml", '[package]\nname = "my-crate"\nversion = "0.1.0"\n'),
        ("other/Cargo.toml", '[package]\nname = "other"\n'),
    )
    assert ws.resolve(importer, "rust", module, name) == expected


def test_rust_main_rs_is_its_own_crate_root(tmp_path: Path) -> None:
    ws = workspace(tmp_path, *RUST_TREE, ("crate/Cargo.toml", '[package]\nname = "c"\n'))
    assert ws.resolve("crate/src/main.rs", "rust", "net", None) == ["crate/src/net.rs"]
    assert ws.resolve("crate/src/net.rs", "rust", "crate", "X") == ["crate/src/lib.rs"]


def test_rust_crate_by_lib_name(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "a/src/main.rs",
        "b/src/lib.rs",
        ("a/Cargo.toml", '[package]\nname = "a"\n'),
        ("b/Cargo.toml", '[package]\nname = "b-pkg"\n[lib]\nname = "blib"\n'),
    )
    assert ws.resolve("a/src/main.rs", "rust", "blib", "f") == ["b/src/lib.rs"]
    assert ws.resolve("a/src/main.rs", "rust", "b_pkg", "f") == []


# ----------------------------------------------------------------------------- Java

JAVA_TREE = (
    "svc/src/main/java/com/acme/app/Main.java",
    "svc/src/main/java/com/acme/util/Strings.java",
    "svc/src/main/java/com/acme/util/Lists.java",
    "svc/src/main/java/com/acme/util/package-info.txt",
    "svc/src/main/java/com/acme/model/Outer.java",
    "svc/src/test/java/com/acme/util/StringsTest.java",
    "lib/src/main/java/org/lib/Api.java",
)


@pytest.mark.parametrize(
    ("module", "name", "expected"),
    [
        ("com.acme.util", "Strings", ["svc/src/main/java/com/acme/util/Strings.java"]),
        ("org.lib", "Api", ["lib/src/main/java/org/lib/Api.java"]),
        (
            "com.acme.util",
            "*",
            [
                "svc/src/main/java/com/acme/util/Lists.java",
                "svc/src/main/java/com/acme/util/Strings.java",
            ],
        ),
        # static import of a member, static wildcard, nested class
        ("com.acme.util.Strings", "join", ["svc/src/main/java/com/acme/util/Strings.java"]),
        ("com.acme.util.Strings", "*", ["svc/src/main/java/com/acme/util/Strings.java"]),
        ("com.acme.model.Outer", "Inner", ["svc/src/main/java/com/acme/model/Outer.java"]),
        # external
        ("java.util", "List", []),
        ("java.util", "*", []),
        ("org.junit.jupiter.api", "Test", []),
    ],
)
def test_java(tmp_path: Path, module: str, name: str, expected: list[str]) -> None:
    ws = workspace(tmp_path, *JAVA_TREE)
    assert ws.resolve("svc/src/main/java/com/acme/app/Main.java", "java", module, name) == expected


def test_java_prefers_the_importers_source_root(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "a/src/com/x/Y.java",
        "a/src/com/x/Main.java",
        "b/src/com/x/Y.java",
        "b/src/com/x/Main.java",
    )
    assert ws.resolve("b/src/com/x/Main.java", "java", "com.x", "Y") == ["b/src/com/x/Y.java"]
    assert ws.resolve("a/src/com/x/Main.java", "java", "com.x", "Y") == ["a/src/com/x/Y.java"]


# ----------------------------------------------------------------------------- C / C++


def test_c_includes(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "c/src/main.c",
        "c/src/local.h",
        "c/include/proj/api.h",
        "c/include/common.h",
        "c/src/common.h",
    )
    assert ws.resolve("c/src/main.c", "c", "local.h") == ["c/src/local.h"]
    assert ws.resolve("c/src/main.c", "c", "common.h") == ["c/src/common.h"]
    assert ws.resolve("c/src/main.c", "cpp", "proj/api.h") == ["c/include/proj/api.h"]
    assert ws.resolve("c/src/main.c", "c", "../include/common.h") == ["c/include/common.h"]
    assert ws.resolve("c/src/main.c", "c", "stdio.h") == []


# ----------------------------------------------------------------------------- changes


def test_removed_file_is_no_longer_resolved_and_added_one_is(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "pkg/__init__.py", "pkg/a.py", "pkg/b.py")
    assert ws.resolve("pkg/a.py", "python", ".b", "f") == ["pkg/b.py"]
    ws.delete("pkg/b.py")
    assert ws.resolve("pkg/a.py", "python", ".b", "f") == []
    ws.write("pkg/b/__init__.py")
    assert ws.resolve("pkg/a.py", "python", ".b", "f") == ["pkg/b/__init__.py"]


def test_tsconfig_change_and_package_json_removal(tmp_path: Path) -> None:
    ws = workspace(
        tmp_path,
        "w/src/a.ts",
        "w/src/lib/b.ts",
        "w/pkgs/p/src/index.ts",
        ("w/tsconfig.json", '{"compilerOptions": {"paths": {"@lib/*": ["src/lib/*"]}}}'),
        ("w/pkgs/p/package.json", '{"name": "p"}'),
    )
    assert ws.resolve("w/src/a.ts", "typescript", "@lib/b") == ["w/src/lib/b.ts"]
    assert ws.resolve("w/src/a.ts", "typescript", "p") == ["w/pkgs/p/src/index.ts"]
    ws.write("w/tsconfig.json", '{"compilerOptions": {"paths": {"#lib/*": ["src/lib/*"]}}}')
    assert ws.resolve("w/src/a.ts", "typescript", "@lib/b") == []
    assert ws.resolve("w/src/a.ts", "typescript", "#lib/b") == ["w/src/lib/b.ts"]
    ws.delete("w/pkgs/p/package.json")
    assert ws.resolve("w/src/a.ts", "typescript", "p") == []


def test_config_files_are_read_lazily_and_once(tmp_path: Path) -> None:
    ws = go_workspace(tmp_path)
    assert ws.reads == []
    for _ in range(3):
        ws.resolve("proj/main.go", "go", "github.com/acme/proj/pkg/util")
        ws.resolve("proj/pkg/util/bytes.go", "go", "github.com/acme/proj/tools/gen")
    assert sorted(ws.reads) == [ws.path("proj/go.mod"), ws.path("proj/tools/go.mod")]


def test_results_are_cached_until_the_file_set_changes(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "pkg/__init__.py", "pkg/a.py", "pkg/b.py")
    first = ws.resolver.resolve(ws.path("pkg/a.py"), "python", Import(".b", "f", None, 0))
    again = ws.resolver.resolve(ws.path("pkg/a.py"), "python", Import(".b", "g", None, 0))
    assert first == again == (ws.path("pkg/b.py"),)
    ws.resolver.add(ws.path("pkg/a.py"))  # an already indexed source file: nothing changes
    assert ws.resolve("pkg/a.py", "python", ".b", "f") == ["pkg/b.py"]


# ----------------------------------------------------------------------------- odd input


@pytest.mark.parametrize("language", ["python", "javascript", "typescript", "tsx", "go", "rust"])
@pytest.mark.parametrize(
    "module",
    ["", ".", "..", "...........", "::", "a..b", "/", "//", "\x00", "a/../../..", "crate::::x"],
)
def test_odd_input_never_raises(tmp_path: Path, language: str, module: str) -> None:
    ws = workspace(tmp_path, "x/a.py", "x/b.ts", "x/c.go", "x/src/lib.rs", "x/Cargo.toml")
    for importer in (ws.path("x/a.py"), "", "relative/path.py", "/"):
        for name in (None, "", "*", ".", "a.b"):
            result = ws.resolver.resolve(importer, language, Import(module, name, None, 0))
            assert isinstance(result, tuple)


def test_unknown_language_and_unindexed_importer(tmp_path: Path) -> None:
    ws = workspace(tmp_path, "pkg/__init__.py", "pkg/b.py")
    assert ws.resolve("pkg/b.py", "ruby", "./b") == []
    assert ws.resolve("elsewhere/x.py", "python", "pkg.b") == ["pkg/b.py"]
