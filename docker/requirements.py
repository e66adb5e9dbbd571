"""Print the requirements of pyproject.toml's dependencies plus the given extras.

Why: the image installs dependencies in a layer of their own, built from pyproject.toml
alone, so a change to the source does not reinstall them. An extra that pyproject.toml does
not define is reported and skipped, so one EXTRAS default fits both a package whose core
dependencies are the server stack and one split into role extras (bridge, edge, flower).
"""
from __future__ import annotations

import sys
import tomllib


def requirements(pyproject: str, extras: list[str]) -> list[str]:
    with open(pyproject, "rb") as f:
        project = tomllib.load(f)["project"]
    defined = project.get("optional-dependencies", {})
    out = list(project.get("dependencies", []))
    for extra in extras:
        if extra not in defined:
            print(f"requirements: no extra {extra!r} in {pyproject} (known: "
                  f"{', '.join(sorted(defined))}); skipped", file=sys.stderr)
            continue
        out += [r for r in defined[extra] if r not in out]
    return out


if __name__ == "__main__":
    print("\n".join(requirements(sys.argv[1], [e for e in sys.argv[2].split(",") if e])))
