"""The layering of radical.edge holds: no import cycle, no import in a forbidden direction.

Layers, bottom up: `app/` (Celery app + wire) < `hpc/` < `plugins/` < `workers/`; `bridge_api/`
uses `app/`; `sdk/` is client side (httpx only). Function-level imports count (a lazy import
is still a dependency); only `if TYPE_CHECKING:` blocks are exempt.
"""
from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from import_graph import ImportGraph

import radical.edge

ROOT = Path(radical.edge.__file__).parent
PKG = "radical.edge"


def _p(*names: str) -> tuple[str, ...]:
    return tuple(f"{PKG}.{n}" for n in names)


#: the command line, top of everything (cli.py dispatches to one cli_*.py per concept)
CLI = ("cli", "cli_access", "cli_client", "cli_enroll", "cli_server", "cli_transfer", "cli_up")
#: process control and the command line: nothing below them imports them
TOP = ("services", "services_sentinel", *CLI)
UPPER = ("app", "hpc", "plugins", "workers", "bridge_api", "sdk", *TOP)

#: (importer prefix, why, forbidden target prefixes)
RULES: list[tuple[str, str, tuple[str, ...]]] = [
    *[(f"{PKG}.{leaf}", "the top-level leaves are below everything", _p(*UPPER))
      for leaf in ("settings", "registry", "constants", "errors", "version", "logs", "extras")],
    (f"{PKG}.app", "app/ is the bottom layer",
     _p("bridge_api", "workers", "plugins", "hpc", *TOP)),
    (f"{PKG}.hpc", "hpc/ sits below plugins and workers",
     _p("bridge_api", "workers", "plugins", *TOP)),
    (f"{PKG}.plugins", "plugins/ must not know the edge runtime or the bridge",
     _p("workers", "bridge_api", *TOP)),
    (f"{PKG}.bridge_api", "the bridge does not run plugins",
     _p("workers", "plugins", "hpc", "sdk", *CLI)),
    (f"{PKG}.workers", "the edge runtime does not import the bridge",
     _p("bridge_api", *CLI)),
    (f"{PKG}.plugins.base", "a base module must not import its subclasses",
     _p("plugins.psij", "plugins.rhapsody", "plugins.sysinfo", "plugins.queue_info",
        "plugins.loader")),
    (f"{PKG}.hpc.batch.base", "a base module must not import its subclasses",
     _p("hpc.batch.slurm", "hpc.batch.pbs", "hpc.batch.none", "hpc.batch.registry")),
    (f"{PKG}.plugins.queue_info.backends.base", "a base module must not import its subclasses",
     _p("plugins.queue_info.backends.slurm", "plugins.queue_info.backends.pbs",
        "plugins.queue_info.backends.none", "plugins.queue_info.backends.factory",
        "plugins.queue_info.backends.slurm_parse", "plugins.queue_info.backends.pbs_parse")),
]

#: what the client side may import of radical.edge: itself and dependency-free leaves
SDK_ALLOWED = _p("sdk", "version", "registry", "constants")  # not errors: EdgeError is its own


@pytest.fixture(scope="module")
def graph() -> ImportGraph:
    g = ImportGraph.build(ROOT, PKG)
    # the checker sees real edges (a broken parser would make every test below pass vacuously)
    assert f"{PKG}.app.keys" in g.edges[f"{PKG}.bridge_api.proxy"]
    assert f"{PKG}.plugins.loader" in g.edges[f"{PKG}.cli_server"]  # a function-level import
    return g


def test_no_import_cycles(graph: ImportGraph) -> None:
    assert graph.cycles() == []


def test_no_forbidden_directions(graph: ImportGraph) -> None:
    assert graph.violations(RULES) == []


def test_sdk_imports_only_sdk(graph: ImportGraph) -> None:
    bad = [f"{src} -> {dst}" for src, dsts in graph.edges.items() if src.startswith(f"{PKG}.sdk")
           for dst in dsts if not any(dst == a or dst.startswith(a + ".") for a in SDK_ALLOWED)]
    assert bad == []


def test_sdk_third_party_is_httpx_only() -> None:
    # orjson: optional speed-up, imported under try/except ImportError (the bare-laptop test)
    allowed = set(sys.stdlib_module_names) | {"httpx", "orjson", "radical", "__future__"}
    seen = set()
    for path in (ROOT / "sdk").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                seen.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                seen.add(node.module.split(".")[0])
    assert seen - allowed == set()


# -- the checker itself -------------------------------------------------------------------------
def _write(root: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def test_checker_reports_a_cycle_through_a_function_level_import(tmp_path: Path) -> None:
    _write(tmp_path, {
        "__init__.py": "",
        "a.py": "from .b import x\n",
        "b.py": "def f():\n    from . import c\n",
        "sub/__init__.py": "",
        "c.py": "import demo.a\n",
        "d.py": "from .a import y\n",  # imports into the cycle, is not part of it
    })
    cycles = ImportGraph.build(tmp_path, "demo").cycles()
    assert cycles == [["demo.a", "demo.b", "demo.c"]]


def test_checker_ignores_type_checking_imports_only(tmp_path: Path) -> None:
    _write(tmp_path, {
        "__init__.py": "",
        "a.py": "from typing import TYPE_CHECKING\nfrom . import b\n"
                "if TYPE_CHECKING:\n    from .b import B\n",
        "b.py": "import typing\nif typing.TYPE_CHECKING:\n    from .a import A\n"
                "else:\n    pass\n",
    })
    assert ImportGraph.build(tmp_path, "demo").cycles() == []
    _write(tmp_path, {"b.py": "if True:\n    from .a import A\n"})
    assert ImportGraph.build(tmp_path, "demo").cycles() == [["demo.a", "demo.b"]]


def test_checker_reports_a_forbidden_direction(tmp_path: Path) -> None:
    _write(tmp_path, {
        "__init__.py": "", "low/__init__.py": "", "high/__init__.py": "",
        "high/mod.py": "X = 1\n",
        "low/base.py": "from ..high.mod import X\n",
    })
    g = ImportGraph.build(tmp_path, "demo")
    assert g.violations([("demo.low", "low is below", ("demo.high",))]) == [
        "demo.low.base -> demo.high.mod: low is below"]
