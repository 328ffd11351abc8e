"""Make a package's entry points visible to importlib.metadata without installing it.

pip writes ``<name>-<version>.dist-info/`` with ``METADATA`` and
``entry_points.txt`` into site-packages; a folder holding the same files on
``sys.path`` is found by :func:`importlib.metadata.entry_points` exactly as
an installed distribution is. The tests use it to register plug-in providers
for real (no pip run, no network, no build backend).
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path

__all__ = ["dist_info", "dist_info_from_pyproject"]


def dist_info(
    site: Path, name: str, version: str, entry_points: Mapping[str, Mapping[str, str]]
) -> Path:
    """Write ``<site>/<name>-<version>.dist-info``; returns ``site``."""
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "METADATA").write_text(
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n", encoding="utf-8"
    )
    lines = []
    for group, entries in entry_points.items():
        lines.append(f"[{group}]")
        lines.extend(f"{key} = {value}" for key, value in entries.items())
        lines.append("")
    (folder / "entry_points.txt").write_text("\n".join(lines), encoding="utf-8")
    return site


def dist_info_from_pyproject(site: Path, pyproject: Path) -> Path:
    """The dist-info pip would write for the project ``pyproject`` describes."""
    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    return dist_info(site, project["name"], project["version"], project.get("entry-points", {}))
