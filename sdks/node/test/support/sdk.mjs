// The SDK under test: the ESM build by default; BEARLUMEN_NODE_TEST_BUILD=cjs loads the CommonJS one.
import { createRequire } from "node:module";

const require = createRequire(import.meta.url);
const sdk =
  process.env.BEARLUMEN_NODE_TEST_BUILD === "cjs"
    ? require("../../dist/cjs/index.js")
    : await import("../../dist/esm/index.js");

export default sdk;
