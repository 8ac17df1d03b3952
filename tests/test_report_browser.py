"""Acceptance (issue 7): the report renders in headless Chromium with no network.

Chromium (Debian package ``chromium``) is driven over the DevTools protocol through
``--remote-debugging-pipe`` (file descriptors 3 and 4, NUL-separated JSON), so no websocket
package is needed. The test opens the report from a ``file://`` URL with networking disabled and
checks that every image has loaded (``naturalWidth > 0``), that no console error, uncaught
exception or failed load is logged, and that nothing but ``file:`` and ``data:`` URLs is requested.
A control page with a broken image and a console error proves the checks can fail.

Skipped when ``/usr/bin/chromium`` is absent (``apt-get install -y chromium``), except under
``MBCT_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``), where its absence fails the test.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import Browser, requires_chromium

pytestmark = requires_chromium


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    b = Browser(tmp_path_factory.mktemp("chromium-profile"))
    yield b
    b.close()


def test_report_renders_offline_with_every_figure_loaded(browser, example_fit, tmp_path):
    from mbct_bayes.report import TrialSettings, write_report
    from mbct_bayes.schema import read_table

    new_sites = read_table(Path(__file__).resolve().parents[1] / "data" / "example" / "new_sites.csv")
    path = write_report(example_fit, tmp_path / "report.html", new_sites=new_sites,
                        trial=TrialSettings(sims=200, clusters=(4, 8)))
    seen = browser.open(path.resolve().as_uri())

    assert len(seen["images"]) >= 5, seen["images"]  # forest, sites, ppc, levers, assurance curve
    assert "assurance curve over clusters per arm" in [i["alt"] for i in seen["images"]]
    not_loaded = [i["alt"] for i in seen["images"] if not (i["complete"] and i["width"] > 0)]
    assert not not_loaded, f"figures that did not load: {not_loaded}"
    assert seen["problems"] == [], seen["problems"]
    # the page itself and its embedded data: nothing from any network
    assert all(u.startswith(("file:", "data:")) for u in seen["requests"]), seen["requests"]
    assert seen["verdict"] == ("PASS" if example_fit.diagnostics["ok"] else "FAIL")


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    page = tmp_path / "broken.html"
    page.write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>broken</title></head><body>"
        "<img alt='missing' src='missing.png'><script>console.error('boom')</script></body></html>",
        encoding="utf-8",
    )
    seen = browser.open(page.as_uri())
    assert [i["width"] for i in seen["images"]] == [0]
    assert any("boom" in p for p in seen["problems"])
    assert any("failed load" in p for p in seen["problems"])
