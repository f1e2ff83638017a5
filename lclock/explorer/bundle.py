"""The explorer's ES modules (``lclock/explorer/js/*.mjs``) as one classic script, for a page
that must stay one self-contained file.

Why not ``<script type="module">`` with an import map of ``data:`` URLs: the page's
Content-Security-Policy allows inline scripts only (``script-src 'unsafe-inline'``), and a
``data:`` module would need that policy loosened. The modules keep to a small subset that
this bundler rewrites line by line, so nothing here parses JavaScript:

- ``import { a, b as c } from "./name.mjs";`` on one line, relative to the same folder;
- ``export`` only in front of ``function``, ``async function``, ``const``, ``let`` or
  ``class`` declarations (no ``export default``, no ``export { ... }``).

Each module becomes a function whose body is the module's text with those lines rewritten
(imports turn into a destructuring of the imported module's object, ``export `` is dropped)
and which returns the names it exports. Modules come in dependency order (depth first from
the entry, in import order), so the output is the same for the same sources. A cycle, an
unknown module or name, or a line outside the subset is a :class:`BundleError`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources

IMPORT = re.compile(r'^import\s*\{([^}]*)\}\s*from\s*"\./([A-Za-z0-9_-]+\.mjs)";?\s*$')
EXPORT = re.compile(r"^export\s+(?:async\s+)?(function\*?|const|let|class)\s+([A-Za-z_$][\w$]*)")
NAME = re.compile(r"^[A-Za-z_$][\w$]*$")


class BundleError(ValueError):
    """The modules are outside the subset the bundler handles (the message says where)."""


@dataclass
class Module:
    """One module: what it imports (module -> [(name, local)]), exports, and its body."""

    name: str
    imports: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    exports: list[str] = field(default_factory=list)
    body: list[str] = field(default_factory=list)


def _specifiers(text: str, where: str) -> list[tuple[str, str]]:
    out = []
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, _, local = (x.strip() for x in part.partition(" as "))
        local = local or name
        if not (NAME.match(name) and NAME.match(local)):
            raise BundleError(f"{where}: cannot read the import of {part!r}")
        out.append((name, local))
    return out


def _more_declarators(rest: str) -> list[str]:
    """The names after the first in ``export const a = 1, b = 2;`` (commas outside brackets
    and strings start a declarator)."""
    names, depth, quote, i = [], 0, "", 0
    while i < len(rest):
        ch = rest[i]
        if quote:
            i += 2 if ch == "\\" else 1
            quote = "" if ch == quote else quote
            continue
        if ch in "\"'`":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            m = re.match(r"\s*([A-Za-z_$][\w$]*)\s*=", rest[i + 1:])
            if m:
                names.append(m.group(1))
        i += 1
    return names


def parse(name: str, source: str) -> Module:
    """Split a module into its imports, its exported names and its rewritten body."""
    mod = Module(name)
    for no, line in enumerate(source.splitlines(), 1):
        where = f"{name}:{no}"
        m = IMPORT.match(line)
        if m:
            mod.imports.setdefault(m.group(2), []).extend(_specifiers(m.group(1), where))
            continue
        if line.startswith("import ") or line.startswith("import{"):
            raise BundleError(f"{where}: only `import {{ a, b }} from \"./x.mjs\";` on one line is supported")
        e = EXPORT.match(line)
        if e:
            mod.exports.append(e.group(2))
            if e.group(1) in ("const", "let"):
                mod.exports.extend(_more_declarators(line[e.end():]))
            mod.body.append(line[len("export "):].lstrip())
            continue
        if re.match(r"^\s*export\b", line):
            raise BundleError(f"{where}: only `export` in front of a declaration is supported")
        mod.body.append(line)
    return mod


def order(modules: Mapping[str, Module], entry: str) -> list[str]:
    """The modules the entry needs, each after the modules it imports."""
    done: list[str] = []
    state: dict[str, str] = {}

    def visit(name: str, chain: tuple[str, ...]) -> None:
        if state.get(name) == "done":
            return
        if state.get(name) == "open":
            raise BundleError("import cycle: " + " -> ".join((*chain, name)))
        if name not in modules:
            raise BundleError(f"{chain[-1] if chain else 'entry'} imports {name}, which does not exist")
        state[name] = "open"
        for dep in modules[name].imports:
            visit(dep, (*chain, name))
        state[name] = "done"
        done.append(name)

    visit(entry, ())
    return done


def _var(name: str) -> str:
    return "__mod_" + re.sub(r"\W", "_", name.removesuffix(".mjs"))


def _wrap(mod: Module, modules: Mapping[str, Module]) -> str:
    head = []
    for dep, specs in mod.imports.items():
        missing = [n for n, _ in specs if n not in modules[dep].exports]
        if missing:
            raise BundleError(f"{mod.name} imports {', '.join(missing)} from {dep}, which does not export it")
        names = ", ".join(n if n == local else f"{n}: {local}" for n, local in specs)
        head.append(f"const {{ {names} }} = {_var(dep)};")
    tail = f"return {{ {', '.join(mod.exports)} }};" if mod.exports else "return {};"
    return "\n".join([f"// ---- {mod.name}", f"const {_var(mod.name)} = (function () {{",
                      *head, *mod.body, tail, "})();"])


def bundle(sources: Mapping[str, str], entry: str) -> str:
    """One strict-mode script running the entry module and the modules it needs."""
    modules = {name: parse(name, text) for name, text in sources.items()}
    parts = [_wrap(modules[name], modules) for name in order(modules, entry)]
    return "\n".join(['(function () {', '"use strict";', *parts, "})();", ""])


ENTRY = "main.mjs"


def explorer_sources() -> dict[str, str]:
    """The explorer's modules as shipped in the package, by file name."""
    folder = resources.files("lclock.explorer") / "js"
    return {p.name: p.read_text(encoding="utf-8") for p in sorted(folder.iterdir(), key=lambda p: p.name)
            if p.name.endswith(".mjs")}


def explorer_script() -> str:
    """The explorer's script, ready to go inline into the page."""
    return bundle(explorer_sources(), ENTRY)
