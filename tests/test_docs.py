"""The documentation site builds offline with warnings as errors, and says what the program has.

One build per test session (HTML into a temporary folder, ``-W --keep-going -n -E``): a renamed
function, class or CLI option that a page or a docstring still names, or a broken cross-reference,
is a warning and so a failure (``nitpicky``; see ``docs/conf.py`` for the few external names let
through). The build runs in a child process whose sockets refuse to connect, so a step that
reached for the network (intersphinx, a download, notebook execution talking to a kernel) would
fail it. Then the pages are checked against the live parser and ``mbct_bayes.__all__``.
"""

from __future__ import annotations

import argparse
import html
import importlib
import inspect
import os
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
# CPU seconds of the build (user + sys of the child): 38-43 measured on 2026-12-02; wall time
# depends on how busy the machine is, CPU time barely does. Executing the notebooks would add minutes.
CPU_BUDGET_S = 90

# Run Sphinx with every socket connection refused (AF_UNIX excepted) and name lookups failing.
_OFFLINE_SPHINX = """
import socket, sys

def _refuse(*args, **kwargs):
    raise OSError("the docs build tried to use the network")

_connect = socket.socket.connect
def _connect_local_only(self, address):
    if self.family == socket.AF_UNIX:
        return _connect(self, address)
    _refuse()

socket.socket.connect = _connect_local_only
socket.socket.connect_ex = _connect_local_only
socket.create_connection = _refuse
socket.getaddrinfo = _refuse
from sphinx.cmd.build import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("docs") / "html"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "MPLBACKEND": "Agg"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-c", _OFFLINE_SPHINX, "-W", "--keep-going", "-n", "-E", "-q", "-b", "html",
         str(DOCS), str(out)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=600,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"docs build: {time.monotonic() - start:.1f} s wall, {cpu:.1f} s CPU")
    assert proc.returncode == 0, f"docs build failed (warnings are errors):\n{proc.stderr[-6000:]}"
    assert cpu < CPU_BUDGET_S, f"docs build took {cpu:.0f} CPU seconds (budget {CPU_BUDGET_S})"
    return out


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """(path, parser) of every subcommand, walked here independently of docs/_ext."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def _option_id(prog: str, option: str) -> str:
    # Sphinx's anchor for ``.. program:: prog`` / ``.. option:: --x``: cmdoption-<prog>-<x>
    return "cmdoption-" + re.sub(r"[^a-z0-9]+", "-", f"{prog} {option.lstrip('-')}".lower()).strip("-")


def test_cli_reference_lists_every_subcommand_and_option(site):
    from mbct_bayes.cli.main import build_parser

    page = (site / "cli.html").read_text(encoding="utf-8")
    text = " ".join(html.unescape(re.sub(r"<[^>]+>", "", page)).split())
    text = text.translate(str.maketrans("\u2018\u2019\u201c\u201d", "''\"\""))  # smart quotes
    commands = list(_commands(build_parser()))
    assert len(commands) >= 15
    missing = []
    for path, parser in commands:
        if f'id="cli-{"-".join(path)}"' not in page or f"mbct-bayes {' '.join(path)}" not in page:
            missing.append(" ".join(path))
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            if action.option_strings:
                longest = max(action.option_strings, key=len)
                if f'id="{_option_id(parser.prog, longest)}"' not in page:
                    missing.append(f"{parser.prog} {longest}")
            if action.help:  # each help text as the parser prints it (no "--" turned into a dash)
                expected = " ".join(parser._get_formatter()._expand_help(action).split())
                if expected not in text:
                    missing.append(f"{parser.prog} {action.dest}: help {expected!r}")
    assert not missing, f"the CLI reference lacks: {missing}"


def test_public_api_is_documented(site):
    import mbct_bayes

    pages = "".join(p.read_text(encoding="utf-8") for p in (site / "api").glob("*.html"))
    index = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in mbct_bayes.__all__:
        obj = getattr(mbct_bayes, name)
        assert f"mb.{name}" in index, f"mbct_bayes.{name} is missing from the API table"
        if inspect.isfunction(obj) or inspect.isclass(obj):
            entry = rf'id="mbct_bayes\.([\w.]+\.)?{re.escape(obj.__qualname__)}"'
            assert re.search(entry, pages), f"no API entry for mbct_bayes.{name}"
    # the power package's names are documented where users import them from
    power = importlib.import_module("mbct_bayes.power")
    for name in power.__all__:
        assert f'id="mbct_bayes.power.{name}"' in pages, f"no API entry for mbct_bayes.power.{name}"


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_notebook_pages_show_code_and_say_they_have_no_outputs(site, notebook):
    html = (site / "notebooks" / f"{notebook.stem}.html").read_text(encoding="utf-8")
    text = re.sub(r"<[^>]+>", "", html)
    assert "without outputs" in text and "tests/test_notebooks.py" in text
    assert "import mbct_bayes as mb" in text  # the code cells are there
    assert "cell_output" not in html  # nothing that looks like a (stale) run


def test_guides_and_getting_started_are_built(site):
    for page in ("index", "getting-started", "guides/fit", "guides/plan", "guides/evaluate", "guides/trial"):
        assert (site / f"{page}.html").is_file(), page
