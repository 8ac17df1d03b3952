"""Sphinx extension of the mbct-bayes docs: pages generated from the package itself.

* ``.. mbct-cli-reference::`` — the CLI reference, built from the parser objects of
  :func:`mbct_bayes.cli.main.build_parser` (every subcommand, nested ones too, with each argument
  as a ``.. option::`` of its ``.. program::``), so a new command or option appears with no edit
  here, and a guide's ``:option:`` reference to a renamed option is a broken reference.
* ``.. mbct-public-api::`` — a table of ``mbct_bayes.__all__``, each name linked to where it is
  documented (its defining module, or the public package that re-exports it from a private
  module), so a public name whose module has no API page is a broken reference under nitpicky.
* The notebooks: ``notebooks/*.ipynb`` are copied into ``<srcdir>/notebooks/`` (a generated,
  git-ignored folder) when the build starts, with a first cell saying how the page was rendered.
  They are stored without outputs and rendered without execution (see ``conf.py``).
"""

from __future__ import annotations

import argparse
import copy
import inspect
import json
import os
import re
from pathlib import Path
from typing import Any

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.application import Sphinx
from sphinx.util.docutils import SphinxDirective
from sphinx.util.nodes import nested_parse_with_titles

# --- CLI reference -------------------------------------------------------------------------------

_RST_SPECIAL = re.compile(r"([\\`*_|])")
_URI = re.compile(r"\b([a-z][a-z0-9+.-]*):(?=//)")


def _escape(text: str) -> str:
    """Plain help text as reST that renders as itself (help strings are not reST): no markup, and
    no link made of an example address such as ``tcp://host:8786``."""
    return _URI.sub(r"\1\\:", _RST_SPECIAL.sub(r"\\\1", " ".join(text.split())))


def _paragraphs(text: str | None) -> list[str]:
    return [_escape(block) for block in re.split(r"\n\s*\n", text or "") if block.strip()]


def _subparsers(parser: argparse.ArgumentParser) -> list[tuple[str, str, argparse.ArgumentParser]]:
    """(name, one-line help, parser) of each subcommand, in the order of ``--help``."""
    found = []
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {choice.dest: choice.help or "" for choice in action._choices_actions}
            for name, sub in action.choices.items():
                found.append((name, helps.get(name, ""), sub))
    return found


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every subcommand path of ``parser``, e.g. ``("fit",)``, ``("power", "analytic")``."""
    paths = []
    for name, _, sub in _subparsers(parser):
        paths.append((*prefix, name))
        paths.extend(command_paths(sub, (*prefix, name)))
    return paths


def _option_signature(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    formatter = parser._get_formatter()
    if not action.option_strings:
        return formatter._metavar_formatter(action, action.dest)(1)[0]
    if action.nargs == 0:
        return ", ".join(action.option_strings)
    args = formatter._format_args(action, action.dest.upper())
    return ", ".join(f"{option} {args}" for option in action.option_strings)


def _option_lines(parser: argparse.ArgumentParser, action: argparse.Action) -> list[str]:
    formatter = parser._get_formatter()
    text = formatter._expand_help(action) if action.help else ""
    lines = [_escape(text)] if text else []
    extras = []
    if action.required and action.option_strings:
        extras.append("required")
    if action.choices is not None and not isinstance(action, argparse._SubParsersAction):
        extras.append("one of " + ", ".join(f"``{choice}``" for choice in action.choices))
    if extras:
        lines += ["", "(" + "; ".join(extras) + ")"]
    return lines


def cli_rst(parser: argparse.ArgumentParser, path: tuple[str, ...] = (), level: int = 0) -> list[str]:
    """reST for ``parser`` and, below it, each of its subcommands (recursively)."""
    underline = "-~^"[min(level, 2)]
    lines: list[str] = []
    if path:
        title = "mbct-bayes " + " ".join(path)
        lines += [f".. _cli-{'-'.join(path)}:", "", title, underline * len(title), ""]
    for paragraph in _paragraphs(parser.description):
        lines += [paragraph, ""]
    usage = parser.format_usage().removeprefix("usage: ").rstrip()
    lines += ["::", ""] + ["    " + line for line in usage.splitlines()] + [""]
    lines += [f".. program:: {parser.prog}", ""]
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction | argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
            continue
        lines += [f".. option:: {_option_signature(parser, action)}", ""]
        lines += ["   " + line if line else "" for line in _option_lines(parser, action)] + [""]
    subs = _subparsers(parser)
    if subs:
        lines += ["Subcommands:", ""]
        lines += [f"* :ref:`{' '.join((*path, name))} <cli-{'-'.join((*path, name))}>` — {_escape(help_)}"
                  for name, help_, _ in subs] + [""]
        for name, _, sub in subs:
            lines += cli_rst(sub, (*path, name), level + 1 if path else level)
    return lines


class CliReference(SphinxDirective):
    """Insert the reference of every ``mbct-bayes`` command, built from the live parser."""

    def run(self) -> list[nodes.Node]:
        from mbct_bayes.cli.main import build_parser

        lines = cli_rst(build_parser())
        container = nodes.section()
        container.document = self.state.document
        nested_parse_with_titles(self.state, StringList(lines, source="<mbct-bayes parser>"), container)
        return container.children


# --- public API table -----------------------------------------------------------------------------


def documented_name(obj: Any) -> str:
    """Where ``obj`` is documented: ``module.name`` when its module is public; else (defined in a
    private module such as ``mbct_bayes._validate`` and re-exported) its bare name, which
    :func:`resolve_unqualified` resolves to the one documented object of that name."""
    if any(part.startswith("_") for part in obj.__module__.split(".")):
        return obj.__qualname__
    return f"{obj.__module__}.{obj.__qualname__}"


_ROLE = re.compile(r":[\w:]+:`~?([^`<]*?)(?:\s*<[^>]*>)?`")


def _summary(obj: Any) -> str:
    """The docstring's first paragraph, its cross-references as plain code: they are written
    relative to their own module, and the objects are linked from the name column anyway."""
    doc = inspect.getdoc(obj) or ""
    return _ROLE.sub(r"``\1``", " ".join(doc.split("\n\n", 1)[0].split()))


class PublicApi(SphinxDirective):
    """A table of ``mbct_bayes.__all__`` linking each name to its documentation."""

    def run(self) -> list[nodes.Node]:
        import mbct_bayes

        lines = [".. list-table::", "   :header-rows: 1", "   :widths: 30 70", "", "   * - name", "     - what it is"]
        for name in mbct_bayes.__all__:
            obj = getattr(mbct_bayes, name)
            if inspect.ismodule(obj):
                ref, summary = f":py:mod:`mb.{name} <{obj.__name__}>`", _summary(obj)
            elif inspect.isclass(obj):
                ref, summary = f":py:class:`mb.{name} <{documented_name(obj)}>`", _summary(obj)
            elif callable(obj):
                ref, summary = f":py:func:`mb.{name} <{documented_name(obj)}>`", _summary(obj)
            else:
                ref, summary = f"``mb.{name}``", f"``{obj!r}``"
            lines += [f"   * - {ref}", f"     - {summary}"]
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="<mbct_bayes.__all__>"), self.content_offset, container)
        return container.children


# --- notebooks ------------------------------------------------------------------------------------

NOTEBOOK_NOTE = (
    "```{note}\n"
    "This page shows the notebook `notebooks/{name}` as stored in the repository: its code and text, "
    "**without outputs**. The notebooks are kept without outputs so that their diffs stay readable, "
    "and the docs build does not run them (that takes minutes; `tests/test_notebooks.py` runs every "
    "notebook in the test suite instead). To see the tables and figures, run it in Jupyter from "
    "the repository root, `jupyter lab notebooks/{name}` (it reads `../data/` relative to its own "
    "folder; JupyterLab is not a dependency: `pip install jupyterlab`).\n"
    "```"
)


def copy_notebooks(app: Sphinx) -> None:
    """Copy ``notebooks/*.ipynb`` into ``<srcdir>/notebooks/`` with the note above as first cell.

    A file is rewritten only when its content changed (atomically), so incremental builds and two
    builds at once see whole files.
    """
    source = Path(app.confdir).parent / "notebooks"
    target = Path(app.srcdir) / "notebooks"
    target.mkdir(exist_ok=True)
    wanted = set()
    for path in sorted(source.glob("*.ipynb")):
        notebook = json.loads(path.read_text(encoding="utf-8"))
        notebook = copy.deepcopy(notebook)
        note = {"cell_type": "markdown", "id": "mbct-docs-note", "metadata": {}, "source": NOTEBOOK_NOTE.replace("{name}", path.name)}
        notebook["cells"] = [notebook["cells"][0], note, *notebook["cells"][1:]] if notebook["cells"] else [note]
        text = json.dumps(notebook, indent=1, ensure_ascii=False) + "\n"
        out = target / path.name
        wanted.add(out.name)
        if not out.exists() or out.read_text(encoding="utf-8") != text:
            tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
            tmp.write_text(text, encoding="utf-8")
            os.replace(tmp, out)
    for stale in target.glob("*.ipynb"):
        if stale.name not in wanted:
            stale.unlink()


def resolve_unqualified(app: Sphinx, env: Any, node: Any, contnode: nodes.Node) -> nodes.Node | None:
    """Resolve a Python reference written without its module (``SamplerSettings`` in a signature
    whose annotation was imported under ``TYPE_CHECKING``, ``DataError`` in a docstring) when
    exactly one documented object has that name; several are an ambiguity warning, none stays a
    broken reference. The same for a target relative to no module (``ModelSpec.coef_names``);
    an absolute one (``mbct_bayes....``) must be exact."""
    target = node.get("reftarget", "")
    if node.get("refdomain") != "py" or node.get("refspecific") or target.lstrip("~").startswith("mbct_bayes."):
        return None
    retry = node.deepcopy()
    retry["refspecific"] = True
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], target, retry, contnode)


def dataclass_factory_defaults(app: Sphinx, what: str, name: str, obj: Any, options: Any, signature: str | None,
                                return_annotation: str | None) -> tuple[str | None, str | None] | None:
    """A dataclass field with ``default_factory`` shows its default as ``<factory>``, which is not
    Python, so the signature parser gives up and splits it at every comma (``dict[str`` becomes a
    class). Show it as ``...`` (there is a default, made fresh per instance)."""
    if signature and "<factory>" in signature:
        return re.sub(r"=\s*<factory>", "= ...", signature), return_annotation
    return None


def setup(app: Sphinx) -> dict[str, Any]:
    app.add_directive("mbct-cli-reference", CliReference)
    app.add_directive("mbct-public-api", PublicApi)
    app.connect("builder-inited", copy_notebooks)
    app.connect("missing-reference", resolve_unqualified)
    # before numpydoc's handler (priority 500), which answers first and would end the event
    app.connect("autodoc-process-signature", dataclass_factory_defaults, priority=400)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
