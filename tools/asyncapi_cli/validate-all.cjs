#!/usr/bin/env node
// `asyncapi validate` on several documents in one Node process (the CLI takes one file a call and its start is slow):
//   node validate-all.cjs <the CLI's package folder> [validate flags…] -- <document>…
// Runs the CLI's own validate command (oclif) on each document in turn; exits 1 when any of them is invalid.
process.env.NODE_ENV = 'production';
const path = require('node:path');

async function main() {
  const [cliRoot, ...rest] = process.argv.slice(2);
  const split = rest.indexOf('--');
  const flags = split < 0 ? [] : rest.slice(0, split);
  const files = split < 0 ? rest : rest.slice(split + 1);
  const root = path.join(cliRoot, 'node_modules', '@asyncapi', 'cli');
  const oclif = require('node:module').createRequire(path.join(root, 'package.json'))('@oclif/core');
  let failed = 0;
  for (const file of files) {
    process.exitCode = 0;
    try {
      await oclif.run(['validate', file, ...flags], root);
    } catch (err) {
      if (!(err && err.oclif && err.oclif.exit === 0)) {
        console.error(`${file}: ${err && err.message ? err.message : err}`);
        process.exitCode = 1;
      }
    }
    if (process.exitCode) failed += 1;
  }
  process.exitCode = failed ? 1 : 0;
  console.log(`validated ${files.length} document(s): ${failed ? `${failed} invalid` : 'all valid'}`);
}

main();
