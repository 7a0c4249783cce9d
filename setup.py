"""Packaging hook: bundle the SPARQL page's editor while the package is built.

`pip install .` and `pip install -e .` run build_py, which here first runs `npm ci` (the
packages of package-lock.json, from the npm registry) and `node editor/build.mjs` (esbuild)
into server/static/editor/, unless the bundle is newer than its inputs. Without npm the
package still builds: the SPARQL page is then the plain form it is without JavaScript.
The rest of the metadata is in pyproject.toml.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
BUNDLE = ROOT / "server" / "static" / "editor" / "sparql.js"
INPUTS = (ROOT / "package.json", ROOT / "package-lock.json", *sorted((ROOT / "editor").glob("*")))


def _is_current() -> bool:
    if not BUNDLE.exists() or not (ROOT / "node_modules" / ".package-lock.json").exists():
        return False
    built = BUNDLE.stat().st_mtime
    return all(not p.exists() or p.stat().st_mtime <= built for p in INPUTS)


def bundle_editor() -> None:
    """npm ci + esbuild into server/static/editor/, when needed and possible."""
    if not (ROOT / "package-lock.json").exists() or _is_current():
        return
    npm = shutil.which("npm")
    if npm is None:
        message = "npm not found: the SPARQL page is served without its editor"
        if os.environ.get("CI"):
            raise SystemExit("kgpub: " + message)
        print("kgpub: warning: " + message, file=sys.stderr)
        return
    quiet = ["--no-audit", "--no-fund", "--loglevel=error"]
    subprocess.run([npm, "ci", *quiet], cwd=ROOT, check=True)
    subprocess.run([npm, "run", "--silent", "build"], cwd=ROOT, check=True)


class BuildWithEditor(build_py):
    """build_py that bundles the editor first (also run by editable installs)."""

    def run(self) -> None:
        bundle_editor()
        super().run()


setup(cmdclass={"build_py": BuildWithEditor})
