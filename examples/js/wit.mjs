// Writes wit/deps, the WASI 0.2.10 WIT that jco 1.35's engine is built against, from the WIT
// that jco ships.
//
// jco 1.35 builds with componentize-js 0.22, whose StarlingMonkey engine exports
// wasi:http/incoming-handler@0.2.10 exactly: a world naming another 0.2.x version fails with
// "failed to find export of interface `wasi:http/incoming-handler@0.2.12`". jco ships the 0.2.10
// packages the engine merges with (io, clocks, sockets) but no wasi:http 0.2.10, so the others
// are its 0.2.12 packages renamed. componentize-js merges this WIT with its engine's own, which
// catches a disagreement (it refused 0.2.12's io, clocks and sockets renamed). Worlds are
// dropped: they include worlds the 0.2.10 packages do not have, and only the interfaces are
// needed.
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const jco = dirname(dirname(createRequire(import.meta.url).resolve("@bytecodealliance/jco")));
const builtin = join(jco, "lib", "wit", "builtin");
const to = join(here, "wit", "deps");

/** The text without its top-level `world NAME { … }` blocks. */
function withoutWorlds(text) {
  let out = "";
  let i = 0;
  for (const m of text.matchAll(/^(?:@[^\n]*\n)*world [\w-]+ \{/gm)) {
    if (m.index < i) continue;
    out += text.slice(i, m.index);
    let depth = 0;
    let j = m.index + m[0].length - 1;
    for (; j < text.length; j++) {
      if (text[j] === "{") depth++;
      else if (text[j] === "}" && --depth === 0) break;
    }
    i = j + 1;
  }
  return out + text.slice(i);
}

await rm(to, { recursive: true, force: true });
const own = new Set(await readdir(join(builtin, "0.2.10")));
for (const pkg of await readdir(join(builtin, "0.2.12"))) {
  const from = own.has(pkg) ? join(builtin, "0.2.10", pkg) : join(builtin, "0.2.12", pkg);
  await mkdir(join(to, pkg), { recursive: true });
  for (const file of await readdir(from)) {
    const text = await readFile(join(from, file), "utf8");
    await writeFile(join(to, pkg, file), withoutWorlds(text.replaceAll("@0.2.12", "@0.2.10")));
  }
}
