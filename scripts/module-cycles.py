#!/usr/bin/env python3
"""Lists import circles between the modules of each crate: a file that names a module of its own
crate (`crate::a::…`) which, directly or through others, names it back.

    scripts/module-cycles.py [CRATE_DIR...]     # default: every crates/*/ with a src/lib.rs or main.rs

Modules are files: `src/a.rs` and `src/a/mod.rs` are `a`, `src/a/b.rs` is `a::b`; a reference to
`crate::a::b::Item` counts as one to `a::b` when that module exists, else to `a`. A submodule's
use of its parent (`super::`) is not a circle: a parent owns its children. Exit 1 when any circle
is found, with one line per circle.
"""
import re
import sys
from pathlib import Path


def modules(src):
    mods = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "mod":
            parts = parts[:-1]
        if parts in (["lib"], ["main"]) or not parts:
            continue
        mods["::".join(parts)] = f
    return mods


def references(text, mods, me):
    out = set()
    # Strip comments so a doc link does not count; `super::` is the parent module's path
    # (the crate root for a top-level module), written out as `crate::…`.
    text = re.sub(r"//[^\n]*", "", text)
    parent = me.rsplit("::", 1)[0] + "::" if "::" in me else ""
    text = re.sub(r"\bsuper::", "crate::" + parent, text)
    text = text.replace("crate::crate::", "crate::")
    for m in re.finditer(r"\bcrate::((?:[a-z_][a-z0-9_]*::)*[A-Za-z_][A-Za-z0-9_]*)", text):
        path = m.group(1).split("::")
        for n in range(len(path), 0, -1):
            cand = "::".join(path[:n])
            if cand in mods:
                out.add(cand)
                break
    # `use crate::{a, b::c}` groups.
    for m in re.finditer(r"\bcrate::\{([^}]*)\}", text):
        for item in m.group(1).split(","):
            head = item.strip().split("::")
            for n in range(len(head), 0, -1):
                cand = "::".join(head[:n])
                if cand in mods:
                    out.add(cand)
                    break
    # A child naming its parent or an ancestor is not an edge.
    return {r for r in out if r != me and not me.startswith(r + "::")}


def cycles(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def main():
    root = Path(__file__).resolve().parent.parent
    dirs = [Path(d) for d in sys.argv[1:]] or sorted(
        d for d in (root / "crates").iterdir() if (d / "src").is_dir()
    )
    found = 0
    for d in dirs:
        mods = modules(d / "src")
        graph = {m: references(f.read_text(), mods, m) for m, f in mods.items()}
        for c in cycles(graph):
            found += 1
            print(f"{d.name}: {' <-> '.join(c)}")
    if found == 0:
        print(f"no import circles in {len(dirs)} crate(s)")
    sys.exit(1 if found else 0)


if __name__ == "__main__":
    main()
