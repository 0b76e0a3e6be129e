/**
 * Checks on package.json and the sources: the contributed settings and
 * commands agree with the code, and the pure modules stay free of `vscode`
 * (so these tests can run them outside VS Code).
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import {
  BUILTIN_COPY_COMMAND,
  BUILTIN_CUT_COMMAND,
  COPY_COMMAND,
  COPY_CONTEXT_KEY,
  CUT_COMMAND,
} from "../src/copiedText";
import { SERVER_SETTING_KEYS } from "../src/serverSettings";

const ROOT = join(__dirname, "..", "..");

interface Manifest {
  name: string;
  publisher: string;
  displayName: string;
  main: string;
  license: string;
  engines: { vscode: string };
  activationEvents: string[];
  dependencies: Record<string, string>;
  devDependencies: Record<string, string>;
  contributes: {
    commands: { command: string; title: string; category?: string }[];
    menus: Record<string, { command: string; when?: string; group?: string }[]>;
    keybindings: { command: string; key: string; mac?: string; when?: string; args?: unknown }[];
    configuration: {
      properties: Record<string, { description?: string; markdownDescription?: string; default?: unknown; scope?: string }>;
    };
  };
}

const manifest = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as Manifest;

const CLIENT_ONLY_KEYS = [
  "completions.enable",
  "completions.languages",
  "server.command",
  "server.args",
  "server.pythonPath",
  "trace.server",
  "copiedText.enable",
];

describe("package.json", () => {
  it("identifies the extension", () => {
    assert.equal(`${manifest.publisher}.${manifest.name}`, "code-llama-ls.code-llama-ls");
    assert.equal(manifest.displayName, "Code Llama");
    assert.equal(manifest.main, "./dist/extension.js");
    assert.equal(manifest.license, "MIT");
    assert.equal(manifest.engines.vscode, "^1.91.0");
    assert.equal(manifest.devDependencies["@types/vscode"], "1.91.0");
    assert.equal(manifest.dependencies["vscode-languageclient"], "11.0.0");
    assert.ok(manifest.activationEvents.includes("onStartupFinished"));
  });

  it("contributes exactly the server keys plus the client-only ones, each described", () => {
    const contributed = Object.keys(manifest.contributes.configuration.properties)
      .map((key) => key.replace(/^codeLlama\./, ""))
      .sort();
    assert.deepEqual(contributed, [...SERVER_SETTING_KEYS, ...CLIENT_ONLY_KEYS].sort());
    for (const [key, schema] of Object.entries(manifest.contributes.configuration.properties)) {
      assert.ok(schema.description ?? schema.markdownDescription, `${key} has no description`);
      assert.ok("default" in schema, `${key} has no default`);
    }
  });

  it("contributes the commands, titled under Code Llama, with the explain command in the editor menu", () => {
    const commands = manifest.contributes.commands.map((command) => command.command).sort();
    assert.deepEqual(commands, [
      "codeLlama.explainSelection",
      "codeLlama.restartServer",
      "codeLlama.showLog",
      "codeLlama.showPromptAtCursor",
      "codeLlama.toggleCompletions",
    ]);
    for (const command of manifest.contributes.commands) {
      assert.equal(command.category, "Code Llama");
    }
    const menu = manifest.contributes.menus["editor/context"]?.find((item) => item.command === "codeLlama.explainSelection");
    assert.equal(menu?.when, "editorTextFocus");
    assert.notEqual(commands.indexOf("codeLlama.explainSelection"), -1);
    assert.equal(commands.includes("codeLlama.explain"), false, "codeLlama.explain belongs to the server");
    assert.equal(commands.includes("codeLlama.showPrompt"), false, "codeLlama.showPrompt belongs to the server");
  });
});

describe("copy and cut keys", () => {
  const bindings = manifest.contributes.keybindings;

  it("run VS Code's own copy or cut first, then the extension's command, in text editors once armed", () => {
    const byKey = new Map(bindings.map((binding) => [binding.key, binding]));
    assert.deepEqual([...byKey.keys()].sort(), ["ctrl+c", "ctrl+x"]);
    assert.equal(byKey.get("ctrl+c")?.mac, "cmd+c");
    assert.equal(byKey.get("ctrl+x")?.mac, "cmd+x");
    for (const binding of bindings) {
      assert.equal(binding.command, "runCommands");
      const when = binding.when ?? "";
      assert.ok(when.startsWith(`${COPY_CONTEXT_KEY} && editorTextFocus`), when);
    }
    assert.deepEqual(byKey.get("ctrl+c")?.args, { commands: [BUILTIN_COPY_COMMAND, COPY_COMMAND] });
    assert.deepEqual(byKey.get("ctrl+x")?.args, { commands: [BUILTIN_CUT_COMMAND, CUT_COMMAND] });
    assert.match(byKey.get("ctrl+x")?.when ?? "", /!editorReadonly/);
  });

  it("activate the extension when run before it started", () => {
    for (const command of [COPY_COMMAND, CUT_COMMAND]) {
      assert.ok(manifest.activationEvents.includes(`onCommand:${command}`), command);
    }
  });

  it("can be turned off, per language too", () => {
    const setting = manifest.contributes.configuration.properties["codeLlama.copiedText.enable"];
    assert.equal(setting?.default, true);
    assert.equal(setting?.scope, "language-overridable");
  });
});

describe("sources", () => {
  const PURE = [
    "completionsGate.ts",
    "copiedText.ts",
    "debounce.ts",
    "explainTarget.ts",
    "explanationHtml.ts",
    "promptReport.ts",
    "serverCommand.ts",
    "serverSettings.ts",
    "status.ts",
  ];

  it("keeps the pure modules free of vscode and the language client", () => {
    for (const file of PURE) {
      const source = readFileSync(join(ROOT, "src", file), "utf8");
      assert.doesNotMatch(source, /from "vscode(-languageclient[^"]*)?"/, file);
    }
  });

  it("starts every source file with a doc comment", () => {
    for (const file of readdirSync(join(ROOT, "src"))) {
      const source = readFileSync(join(ROOT, "src", file), "utf8");
      assert.ok(source.startsWith("/**"), `${file} has no doc comment at the top`);
    }
  });
});
