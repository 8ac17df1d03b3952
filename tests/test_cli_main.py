"""The ``mbct-bayes`` entry point: every area's module imports and registers its commands.

A CLI module that fails to import is an error, not a skipped area (issue 13): a command that
vanished would look like a typo to the user and like a pass to the robustness battery.
"""

from __future__ import annotations

import argparse
import importlib
from pathlib import Path

import pytest

from mbct_bayes.cli import main as cli_main

# What each area must register; a command dropped or moved shows here by name.
COMMANDS_BY_AREA = {
    "simulate": {"simulate"},
    "validate": {"validate"},
    "score": {"score"},
    "reliability": {"reliability"},
    "fit": {"fit"},
    "summary": {"summary"},
    "predict": {"predict"},
    "demo": {"demo"},
    "plan": {"plan"},
    "forecast": {"forecast"},
    "score_forecasts": {"score-forecasts"},
    "evaluate": {"evaluate"},
    "loo": {"loo"},
    "check": {"check"},
    "power": {"power"},
    "report": {"report"},
    "planner": {"planner"},
}


def _commands(parser: argparse.ArgumentParser) -> set[str]:
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    assert len(actions) == 1
    return set(actions[0].choices)


def test_the_expected_areas_are_listed():
    assert set(cli_main.AREAS) == set(COMMANDS_BY_AREA)


@pytest.mark.parametrize("area", cli_main.AREAS)
def test_every_area_imports_and_registers_its_commands(area):
    module = importlib.import_module(f"mbct_bayes.cli.{area}")
    parser = argparse.ArgumentParser()
    module.register(parser.add_subparsers())
    assert _commands(parser) == COMMANDS_BY_AREA[area]


def test_the_full_parser_has_every_command():
    assert _commands(cli_main.build_parser()) == set().union(*COMMANDS_BY_AREA.values())


def test_an_area_that_fails_to_import_is_an_error(monkeypatch):
    # planted: an area whose module is missing must stop the CLI, not drop its commands quietly
    monkeypatch.setattr(cli_main, "AREAS", (*cli_main.AREAS, "no_such_area"))
    with pytest.raises(ModuleNotFoundError, match="no_such_area"):
        cli_main.build_parser()


@pytest.mark.parametrize("area", cli_main.AREAS)
def test_each_module_is_named_after_its_command(area):
    # issue 13: a command is found by its name; only ``-`` becomes ``_`` in a module name
    assert COMMANDS_BY_AREA[area] == {area.replace("_", "-")}


def test_every_command_module_is_listed():
    # a module in cli/ that is neither listed nor a helper would be a command nobody can run
    helpers = {"__init__", "main", "_common", "power_text"}
    modules = {p.stem for p in Path(cli_main.__file__).parent.glob("*.py")} - helpers
    assert modules == set(cli_main.AREAS)


# The order users see in ``mbct-bayes --help``: the data, the survey, the model's main job, then planning,
# forecasts, checks and trial design. AREAS sets it, so a reordered AREAS shows here.
HELP_ORDER = [
    "simulate", "validate", "score", "reliability", "fit", "summary", "predict", "demo",
    "plan", "forecast", "score-forecasts", "evaluate", "loo", "check", "power", "report", "planner",
]


def test_help_lists_the_commands_in_their_order():
    actions = [a for a in cli_main.build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    assert list(actions[0].choices) == HELP_ORDER
