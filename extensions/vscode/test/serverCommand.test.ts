/** Unit tests for the server launch settings (src/serverCommand.ts). */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { describeLaunch, expandHome, serverLaunch } from "../src/serverCommand";

describe("serverLaunch", () => {
  it("runs `code-llama-ls serve` by default", () => {
    assert.deepEqual(serverLaunch({}), { command: "code-llama-ls", args: ["serve"] });
    assert.deepEqual(serverLaunch({ command: "code-llama-ls", args: ["serve"], pythonPath: "" }), {
      command: "code-llama-ls",
      args: ["serve"],
    });
  });

  it("uses the command and arguments given", () => {
    assert.deepEqual(serverLaunch({ command: " /opt/cl/bin/code-llama-ls ", args: ["serve", "--config", "x.toml"] }), {
      command: "/opt/cl/bin/code-llama-ls",
      args: ["serve", "--config", "x.toml"],
    });
    assert.deepEqual(serverLaunch({ args: [] }), { command: "code-llama-ls", args: [] });
  });

  it("runs the module with the Python path when one is set", () => {
    assert.deepEqual(serverLaunch({ command: "ignored", args: ["ignored"], pythonPath: "/venv/bin/python" }), {
      command: "/venv/bin/python",
      args: ["-m", "code_llama_ls", "serve"],
    });
  });

  it("falls back to defaults for malformed values", () => {
    assert.deepEqual(serverLaunch({ command: "  ", args: ["serve", 3], pythonPath: 7 }), {
      command: "code-llama-ls",
      args: ["serve"],
    });
  });

  it("expands ~ in paths", () => {
    assert.equal(serverLaunch({ pythonPath: "~/venv/bin/python" }, "/home/me").command, "/home/me/venv/bin/python");
    assert.equal(expandHome("~", "/home/me"), "/home/me");
    assert.equal(expandHome("~other/x", "/home/me"), "~other/x");
    assert.equal(expandHome("~/x", ""), "~/x");
  });
});

describe("describeLaunch", () => {
  it("quotes what a shell would split", () => {
    assert.equal(describeLaunch({ command: "code-llama-ls", args: ["serve"] }), "code-llama-ls serve");
    assert.equal(
      describeLaunch({ command: "/my models/python", args: ["-m", "code_llama_ls", "it's"] }),
      `'/my models/python' -m code_llama_ls 'it'\\''s'`,
    );
  });
});
