// Bundle the SPARQL page's editor (editor/sparql.js and the npm packages of package-lock.json)
// into server/static/editor/sparql.js, minified (the server sends it gzip-coded to clients that
// accept it, server/views/sparql.py). Run by `npm run build`, and by `pip install` through
// setup.py. esbuild's output depends only on its input: the same lock
// gives the same bytes.
import { build } from "esbuild";
import { mkdirSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "server", "static", "editor");
mkdirSync(out, { recursive: true });
const target = join(out, "sparql.js");
await build({
  entryPoints: [join(root, "editor", "sparql.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  legalComments: "eof",
  outfile: target,
  logLevel: "warning",
});
const code = readFileSync(target);
console.log(`editor: ${target} ${code.length} bytes, ${gzipSync(code, { level: 6 }).length} gzipped`);
