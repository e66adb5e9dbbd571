"""A small AST import-graph of a package: who imports whom, its cycles, its forbidden edges.

Why not import-linter: this is 100 lines with no dependency, it counts function-level imports
(lazy imports still make a cycle of concepts) and skips only `if TYPE_CHECKING:` blocks.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


def _module_name(root: Path, path: Path, package: str) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join([package, *parts]) if parts else package


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement in `tree`, at any depth, except under `if TYPE_CHECKING:`."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for other in child.orelse:
                    visit_stmt(other)
                continue
            visit_stmt(child)

    def visit_stmt(node: ast.AST) -> None:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        visit(node)

    visit(tree)
    return found


@dataclass
class ImportGraph:
    """Directed graph module -> modules of the same package it imports."""

    package: str
    edges: dict[str, set[str]]

    @classmethod
    def build(cls, root: Path, package: str) -> "ImportGraph":
        """Parse every .py under `root` (the directory of `package`)."""
        files = {_module_name(root, p, package): p for p in sorted(root.rglob("*.py"))}
        edges: dict[str, set[str]] = {m: set() for m in files}
        for mod, path in files.items():
            is_pkg = path.name == "__init__.py"
            for node in _imports(ast.parse(path.read_text(), str(path))):
                for target in _targets(node, mod, is_pkg, files):
                    if target != mod:
                        edges[mod].add(target)
        return cls(package, edges)

    def cycles(self) -> list[list[str]]:
        """Strongly connected components with more than one module (Tarjan), sorted."""
        index: dict[str, int] = {}
        low: dict[str, int] = {}
        stack: list[str] = []
        on_stack: set[str] = set()
        out: list[list[str]] = []
        counter = [0]

        def strong(v: str) -> None:
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on_stack.add(v)
            for w in sorted(self.edges[v]):
                if w not in index:
                    strong(w)
                    low[v] = min(low[v], low[w])
                elif w in on_stack:
                    low[v] = min(low[v], index[w])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))

        for v in sorted(self.edges):
            if v not in index:
                strong(v)
        return sorted(out)

    def violations(self, rules: list[tuple[str, str, tuple[str, ...]]]) -> list[str]:
        """Edges breaking a rule (importer_prefix, why, forbidden target prefixes)."""
        bad = []
        for src, targets in sorted(self.edges.items()):
            for prefix, why, forbidden in rules:
                if not _under(src, prefix):
                    continue
                for dst in sorted(targets):
                    if any(_under(dst, f) for f in forbidden):
                        bad.append(f"{src} -> {dst}: {why}")
        return bad


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def _targets(node: ast.Import | ast.ImportFrom, mod: str, is_pkg: bool,
             files: dict[str, Path]) -> list[str]:
    """Modules of the package an import statement loads (a from-import of a submodule counts)."""
    if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
        return [t for t in (_known(n, files) for n in names) if t]
    if node.level:
        base = mod.split(".") if is_pkg else mod.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        origin = ".".join(base + ([node.module] if node.module else []))
    else:
        origin = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{origin}.{alias.name}"
        if sub in files:
            out.append(sub)
        elif (t := _known(origin, files)):
            out.append(t)
    return out


def _known(name: str, files: dict[str, Path]) -> str | None:
    """The deepest module of the package that `name` is or lies in, if any."""
    parts = name.split(".")
    while parts:
        cand = ".".join(parts)
        if cand in files:
            return cand
        parts.pop()
    return None
