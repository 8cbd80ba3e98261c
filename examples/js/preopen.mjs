// Gives jco's WIT reader the host's files. jco 1.35 reads the --wit directory through
// wasm-tools compiled to a component, run on @bytecodealliance/preview2-shim 0.26, which
// preopens no directory by default: every path then fails with "failed to get path metadata:
// No such file or directory (os error 44)". Loaded with `node --import ./preopen.mjs` before jco,
// this preopens `/` in the copy of the shim that jco's wasm-tools imports.
import { createRequire } from "node:module";
import { pathToFileURL } from "node:url";

const here = createRequire(import.meta.url);
const jco = createRequire(here.resolve("@bytecodealliance/jco"));
const transpile = createRequire(jco.resolve("@bytecodealliance/jco-transpile"));
const filesystem = transpile.resolve("@bytecodealliance/preview2-shim/filesystem");
const { _addPreopen } = await import(pathToFileURL(filesystem).href);
_addPreopen("/", "/");
