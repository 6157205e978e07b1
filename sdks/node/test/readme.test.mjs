// sdks/node/README.md is tested: its ```ts blocks (not those marked ```ts skip), in order and as one ES
// module, compiled with TypeScript and run against a fresh real `bearlumen serve`; what they print must be
// exactly its ```text blocks.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, test } from "node:test";

import ts from "typescript";

import { startService } from "./support/service.mjs";

const ROOT = join(dirname(fileURLToPath(import.meta.url)), "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");

function blocks(info) {
  const found = [];
  const pattern = /^```([^\n]*)\n([\s\S]*?)^```$/gm;
  for (const match of README.matchAll(pattern)) if (match[1].trim() === info) found.push(match[2]);
  return found;
}

let service;

before(async () => {
  service = await startService();
});

after(async () => {
  await service?.stop();
});

test("the README's TypeScript tour runs and prints what the README shows", () => {
  const source = blocks("ts").join("\n");
  assert.ok(source.includes("client.endUsers.create"));
  const { outputText, diagnostics } = ts.transpileModule(source, {
    compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 },
    reportDiagnostics: true,
  });
  assert.deepEqual(diagnostics, []);
  // inside the package, so that "@bearlumen/node-sdk" resolves to this build
  const file = join(ROOT, `.readme-tour-${process.pid}.mjs`);
  writeFileSync(file, outputText);
  try {
    const result = spawnSync(process.execPath, [file], {
      cwd: ROOT,
      encoding: "utf8",
      env: { ...process.env, BEARLUMEN_API_KEY: service.apiKey, BEARLUMEN_BASE_URL: service.baseUrl },
    });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout, blocks("text").join(""));
  } finally {
    rmSync(file, { force: true });
  }
});
