// Bundles src/extension.ts and vscode-languageclient into dist/extension.js
// (CommonJS for VS Code's Node extension host; `vscode` stays external).
//   usage: node scripts/bundle.mjs [--production]   (--production: minified, no source map)
import { build } from "esbuild";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const production = process.argv.includes("--production");

await build({
  absWorkingDir: root,
  entryPoints: ["src/extension.ts"],
  outfile: "dist/extension.js",
  bundle: true,
  platform: "node",
  format: "cjs",
  // VS Code 1.91's extension host runs Node 20.
  target: "node20",
  external: ["vscode"],
  minify: production,
  sourcemap: production ? false : "linked",
  legalComments: production ? "none" : "inline",
  logLevel: "warning",
});
