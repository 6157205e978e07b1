// The CommonJS side of the same types (resolved through the package's "require" condition).
import sdk = require("@bearlumen/node-sdk");

export function make(): sdk.BearLumen {
  const client = new sdk.BearLumen({ apiKey: "blm_x", timeout: 5000, maxRetries: 0 });
  const total: sdk.DecimalString = sdk.sumDecimalStrings(["0.1", "0.2"]);
  void total;
  return client;
}
