"""The ``mbct-bayes`` entry point: every area's module imports and registers its commands.

A CLI module that fails to import is an error, not a skipped area (issue 13): a command that
vanished would look like a typo to the user and like a pass to the robustness battery.
"""

from __future__ import annotations

import argparse
import importlib

import pytest

from mbct_bayes.cli import main as cli_main

# What each area must register; a command dropped or moved shows here by name.
COMMANDS_BY_AREA = {
    "data": {"simulate", "validate"},
    "survey": {"score", "reliability"},
    "model": {"fit", "summary", "predict", "demo"},
    "plan": {"plan"},
    "score_forecasts": {"score-forecasts"},
    "evaluate": {"evaluate"},
    "loo": {"loo"},
    "check": {"check"},
    "power": {"power"},
    "report": {"report"},
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
