// FAULT FAKE: a reverse proxy in front of the real service that injects the faults recordings cannot give
// (a dropped connection after the service stored the request, a 500, a 503 with Retry-After, a hang). Every
// request it does forward reaches the real `bearlumen serve`, which stays the only thing that stores data.
import { createServer, request as httpRequest } from "node:http";

/**
 * `plan(req, attempt)` decides for the n-th request (1-based) of a `METHOD path` what happens:
 *   "forward"            pass it through
 *   "drop-after-forward" pass it to the service, then close the client's connection without an answer
 *   "drop"               close the connection before the service sees it
 *   { status, headers? } answer this status with an `internal_error` envelope, without forwarding
 *   "hang"               never answer (the client's timeout ends it)
 */
export async function startFaultProxy(targetBaseUrl, plan) {
  const target = new URL(targetBaseUrl);
  const attempts = new Map();
  const seen = [];
  const server = createServer((req, res) => {
    const chunks = [];
    req.on("data", (chunk) => chunks.push(chunk));
    req.on("end", () => {
      const key = `${req.method} ${req.url.split("?")[0]}`;
      const attempt = (attempts.get(key) ?? 0) + 1;
      attempts.set(key, attempt);
      const body = Buffer.concat(chunks);
      seen.push({ key, attempt, requestId: req.headers["x-request-id"], body: body.toString("utf8") });
      const action = plan(key, attempt) ?? "forward";
      if (action === "hang") return;
      if (action === "drop") return req.socket.destroy();
      if (typeof action === "object") {
        res.writeHead(action.status, { "content-type": "application/json", ...(action.headers ?? {}) });
        res.end(JSON.stringify({ error: { code: "internal_error", message: "injected fault", param: null, requestId: "req_fault" } }));
        return;
      }
      const upstream = httpRequest(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: { ...req.headers, host: target.host } },
        (answer) => {
          const parts = [];
          answer.on("data", (part) => parts.push(part));
          answer.on("end", () => {
            if (action === "drop-after-forward") return req.socket.destroy();
            res.writeHead(answer.statusCode, answer.headers);
            res.end(Buffer.concat(parts));
          });
        },
      );
      upstream.on("error", () => req.socket.destroy());
      upstream.end(body);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    baseUrl: `http://127.0.0.1:${server.address().port}`,
    seen,
    attempts: (key) => attempts.get(key) ?? 0,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(resolve);
      }),
  };
}
