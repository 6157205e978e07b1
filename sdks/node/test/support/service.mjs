// The real Bear Lumen service as a subprocess, for the Node SDK's tests (as tests/support/service.py does
// for the Python ones): `bearlumen serve` on a free loopback port with a fresh SQLite file, and the API key
// of tenant "test" made with `bearlumen keys create` before the start.
//
// The Python interpreter is $BEARLUMEN_PYTHON, else the repository's .venv-ci/bin/python or .venv/bin/python
// (whichever exists). .ci/node passes the CI virtualenv's.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, openSync, closeSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { after, before } from "node:test";

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), "../../../..");

export function pythonPath() {
  if (process.env.BEARLUMEN_PYTHON) return process.env.BEARLUMEN_PYTHON;
  for (const venv of [".venv-ci", ".venv"]) {
    const candidate = join(REPO, venv, "bin", "python");
    if (existsSync(candidate)) return candidate;
  }
  throw new Error("No Python with bearlumen installed: set BEARLUMEN_PYTHON (or create .venv / .venv-ci)");
}

export function freePort() {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.on("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => resolvePort(port));
    });
  });
}

// The `bearlumen` console script next to the interpreter (as tests/support/service.py runs it), else the module.
function command(python, args) {
  const script = join(dirname(python), "bearlumen");
  return existsSync(script) ? [script, args] : [python, ["-m", "bearlumen.cli", ...args]];
}

function cli(python, args, env) {
  const [program, argv] = command(python, args);
  const result = spawnSync(program, argv, { env, encoding: "utf8" });
  if (result.status !== 0) {
    throw new Error(`bearlumen ${args.join(" ")} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  }
  return result.stdout.trim();
}

/**
 * Start `bearlumen serve`; resolves to { baseUrl, apiKey, databaseUrl, createKey(tenant), stop() }.
 * `args`: more `bearlumen serve` options (e.g. ["--rate-limit", "1"]).
 */
export async function startService({ args = [] } = {}) {
  const python = pythonPath();
  const workdir = mkdtempSync(join(tmpdir(), "bearlumen-node-test-"));
  const databaseUrl = `sqlite:///${join(workdir, "bearlumen.db")}`;
  const env = { ...process.env, BEARLUMEN_HOME: join(workdir, "home") };
  delete env.BEARLUMEN_RATE_LIMIT;
  const apiKey = cli(python, ["keys", "create", "--tenant", "test", "--database-url", databaseUrl], env);
  const port = await freePort();
  const logPath = join(workdir, "service.log");
  const log = openSync(logPath, "a");
  const [program, argv] = command(python, [
    "serve",
    "--port",
    String(port),
    "--database-url",
    databaseUrl,
    "--no-access-log",
    ...args,
  ]);
  const child = spawn(program, argv, { env, stdio: ["ignore", log, log] });
  closeSync(log);
  const exited = new Promise((resolveExit) => child.once("exit", resolveExit));
  const baseUrl = `http://127.0.0.1:${port}`;
  const handle = {
    baseUrl,
    apiKey,
    databaseUrl,
    port,
    python,
    createKey: (tenant) => cli(python, ["keys", "create", "--tenant", tenant, "--database-url", databaseUrl], env),
    /** Run a `bearlumen` command on this service's database (e.g. reprice). */
    cli: (commandArgs) => cli(python, [...commandArgs, "--database-url", databaseUrl], env),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 30_000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(workdir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 60_000;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) {
      const output = readFileSync(logPath, "utf8");
      await handle.stop();
      throw new Error(`bearlumen serve exited with ${child.exitCode}:\n${output}`);
    }
    try {
      const response = await fetch(`${baseUrl}/healthz`);
      if (response.status === 200) return handle;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  await handle.stop();
  throw new Error("bearlumen serve did not become healthy in 60 s");
}

/**
 * The usual fixture of a test file: a service started before its tests and stopped after them, and a
 * client on it. Returns an object whose `service` and `client` are set once `before` ran.
 */
export function serviceForTests(sdk, { args, clientOptions } = {}) {
  const fixture = { service: null, client: null };
  before(async () => {
    fixture.service = await startService({ args });
    fixture.client = new sdk.BearLumen({ apiKey: fixture.service.apiKey, baseUrl: fixture.service.baseUrl, ...clientOptions });
  });
  after(async () => {
    await fixture.client?.shutdown();
    await fixture.service?.stop();
  });
  return fixture;
}
