"""The lint and the types stay true: ``ruff check`` and ``mypy`` over the package, as CI runs them.

Both tools are declared in the ``test`` extra (pyproject.toml), so they are run, not skipped; the
mypy settings are the ``[tool.mypy]`` section of pyproject.toml.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_tool(*args: str) -> subprocess.CompletedProcess[str]:
    """Run ``python -m <tool> ...`` from the repository root with this interpreter."""
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=900)


def test_ruff_is_clean():
    done = run_tool("ruff", "check", "mbct_bayes", "tests")
    assert done.returncode == 0, f"ruff check found problems:\n{done.stdout}{done.stderr}"


def test_mypy_passes_on_the_package():
    done = run_tool("mypy", "mbct_bayes")
    assert done.returncode == 0, f"mypy found type errors:\n{done.stdout}{done.stderr}"
