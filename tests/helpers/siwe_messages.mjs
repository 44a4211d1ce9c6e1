// Sign-In with Ethereum messages as the reference library (`siwe` 3) and viem
// (`createSiweMessage`) write them, each signed by the given key with viem's personal_sign.
// Reads {"key": "0x…", "cases": [{library, fields}]} on stdin; prints [{message, signature}].
import { SiweMessage } from "siwe";
import { createSiweMessage } from "viem/siwe";
import { privateKeyToAccount } from "viem/accounts";

const input = JSON.parse(await new Promise((resolve) => {
  let text = "";
  process.stdin.on("data", (chunk) => (text += chunk));
  process.stdin.on("end", () => resolve(text));
}));
const account = privateKeyToAccount(input.key);

function bySiwe(fields) {
  return new SiweMessage({ ...fields, address: account.address, version: "1" }).prepareMessage();
}

function byViem(fields) {
  const dates = {};
  for (const name of ["issuedAt", "expirationTime", "notBefore"]) {
    if (fields[name]) dates[name] = new Date(fields[name]);
  }
  return createSiweMessage({ ...fields, ...dates, address: account.address, version: "1" });
}

const out = [];
for (const { library, fields } of input.cases) {
  const message = library === "siwe" ? bySiwe(fields) : byViem(fields);
  out.push({ message, signature: await account.signMessage({ message }) });
}
process.stdout.write(JSON.stringify(out));
