// Recorded provider traffic (the vcrpy cassettes vendored under tests/cassettes, with their LICENSE files)
// replayed into the real openai / anthropic Node SDKs through their `fetch` option: each request gets the
// next recorded answer for its method and path (query ignored, as tests/cassettes/README.md advises).
import { readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { gunzipSync } from "node:zlib";

import { parse } from "yaml";

export const CASSETTES = resolve(dirname(fileURLToPath(import.meta.url)), "../../../../tests/cassettes");

export function loadCassette(path) {
  const document = parse(readFileSync(join(CASSETTES, path), "utf8"), { schema: "yaml-1.1" });
  return document.interactions.map(({ request, response }) => {
    const headers = new Headers();
    let encoding = null;
    for (const [name, values] of Object.entries(response.headers ?? {})) {
      const lower = name.toLowerCase();
      if (lower === "content-encoding") encoding = String(values[0]);
      if (["content-encoding", "content-length", "transfer-encoding"].includes(lower)) continue;
      for (const value of values) headers.append(name, String(value));
    }
    let body = response.body?.string ?? "";
    if (body instanceof Uint8Array) body = Buffer.from(encoding === "gzip" ? gunzipSync(body) : body).toString("utf8");
    if (!headers.has("content-type")) {
      // some recordings kept no response headers; the Node SDKs parse JSON only when the type says so
      const json = /^\s*[[{]/.test(body);
      headers.set("content-type", json ? "application/json" : "text/event-stream");
    }
    return {
      method: request.method.toUpperCase(),
      path: new URL(request.uri).pathname,
      status: response.status.code,
      headers,
      body,
    };
  });
}

/** A `fetch` that answers from the cassette, in recorded order per method and path. */
export function replayFetch(path) {
  const interactions = loadCassette(path);
  const used = new Set();
  return async (input, init = {}) => {
    const url = new URL(typeof input === "string" ? input : input.url ?? String(input));
    const method = (init.method ?? "GET").toUpperCase();
    const index = interactions.findIndex((i, n) => !used.has(n) && i.method === method && i.path === url.pathname);
    if (index < 0) throw new Error(`no recorded answer left for ${method} ${url.pathname} in ${path}`);
    used.add(index);
    const recorded = interactions[index];
    return new Response(recorded.body, { status: recorded.status, headers: recorded.headers });
  };
}
