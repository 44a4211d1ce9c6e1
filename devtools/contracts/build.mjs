// Compiles the test tokens with solc (npm) into artifacts/<Contract>.json: {abi, bytecode}.
// Run through `make contracts`; the artifacts are committed so Python never needs Node to
// read them.
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import solc from "solc";

const here = path.dirname(fileURLToPath(import.meta.url));
const sources = Object.fromEntries(
  fs.readdirSync(here)
    .filter((file) => file.endsWith(".sol"))
    .map((file) => [file, { content: fs.readFileSync(path.join(here, file), "utf8") }]),
);
const input = {
  language: "Solidity",
  sources,
  settings: {
    optimizer: { enabled: true, runs: 200 },
    evmVersion: "cancun",
    outputSelection: { "*": { "*": ["abi", "evm.bytecode.object"] } },
  },
};
const output = JSON.parse(solc.compile(JSON.stringify(input)));
const errors = (output.errors || []).filter((e) => e.severity === "error");
if (errors.length) {
  for (const e of errors) console.error(e.formattedMessage);
  process.exit(1);
}
fs.mkdirSync(path.join(here, "artifacts"), { recursive: true });
for (const [file, contracts] of Object.entries(output.contracts)) {
  for (const [name, contract] of Object.entries(contracts)) {
    const artifact = { contract: name, source: file, compiler: solc.version(),
                       abi: contract.abi, bytecode: "0x" + contract.evm.bytecode.object };
    fs.writeFileSync(path.join(here, "artifacts", `${name}.json`),
                     JSON.stringify(artifact, null, 2) + "\n");
    console.log(`compiled ${name}`);
  }
}
