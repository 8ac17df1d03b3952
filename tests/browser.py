"""Headless Chromium driven over the DevTools pipe, for the browser tests (report, planner).

Chromium (Debian package ``chromium``) is started with ``--remote-debugging-pipe`` (file
descriptors 3 and 4, NUL-separated JSON), so no websocket package is needed, and with every host
name failing to resolve, so nothing could be fetched from a network even if a page asked.
:data:`requires_chromium` skips a test module when ``/usr/bin/chromium`` is absent, except under
``MBCT_REQUIRE_CHROMIUM=1`` (set by ``.ci/run``), where its absence fails the test.
"""

from __future__ import annotations

import base64
import json
import os
import select
import subprocess
import time
from pathlib import Path

import pytest

CHROMIUM = Path(os.environ.get("MBCT_CHROMIUM", "/usr/bin/chromium"))
# CI sets MBCT_REQUIRE_CHROMIUM=1 (.ci/run): there a missing browser fails the test instead of skipping it
requires_chromium = pytest.mark.skipif(
    not CHROMIUM.exists() and not os.environ.get("MBCT_REQUIRE_CHROMIUM"),
    reason=f"{CHROMIUM} not found: install Chromium from Debian (apt-get install -y chromium) to run the browser test",
)
TIMEOUT = 30.0
FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-extensions", "--disable-default-apps", "--mute-audio",
    # no network: every host name fails to resolve, so nothing could be fetched even if asked for
    "--host-resolver-rules=MAP * ~NOTFOUND",
)
IMAGES_JS = "Array.from(document.images).map(i => ({alt: i.alt, complete: i.complete, width: i.naturalWidth}))"


class Browser:
    """Headless Chromium driven over the DevTools pipe (fd 3: commands in, fd 4: replies out)."""

    def __init__(self, profile: Path) -> None:
        cmd_r, self._cmd_w = os.pipe()
        self._res_r, res_w = os.pipe()
        os.set_inheritable(cmd_r, True)
        os.set_inheritable(res_w, True)

        def to_3_and_4() -> None:  # runs in the child before exec
            os.dup2(cmd_r, 3)
            os.dup2(res_w, 4)

        self.proc = subprocess.Popen(
            [str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            preexec_fn=to_3_and_4, pass_fds=(3, 4), stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        os.close(cmd_r)
        os.close(res_w)
        self._buffer = b""
        self._next_id = 0
        self.events: list[dict] = []

    def _receive(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            ready, _, _ = select.select([self._res_r], [], [], max(0.0, deadline - time.monotonic()))
            if not ready:
                raise TimeoutError("Chromium did not answer in time")
            chunk = os.read(self._res_r, 1 << 16)
            if not chunk:
                raise EOFError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def call(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + TIMEOUT
        while True:
            reply = self._receive(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while not any(e.get("method") == method for e in self.events):
            self.events.append(self._receive(deadline))

    def open(self, url: str) -> dict:
        """Load ``url`` in a fresh tab; return the images' state and everything worth complaining about."""
        session = self.page(url)
        images = self.call("Runtime.evaluate", {"expression": IMAGES_JS, "returnByValue": True}, session=session)
        verdict = self.call(
            "Runtime.evaluate",
            {"expression": "(document.getElementById('verdict') || {dataset: {}}).dataset.verdict || ''",
             "returnByValue": True},
            session=session,
        )
        return {
            "images": images["result"]["value"],
            "verdict": verdict["result"]["value"],
            "problems": problems(self.events),
            "requests": self.requests(),
        }

    def page(self, url: str) -> str:
        """Load ``url`` in a fresh tab and keep it: returns the session id for :meth:`evaluate`.

        The events seen from then on (:attr:`events`) are the page's; :func:`problems` and
        :meth:`requests` read them.
        """
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Network"):
            self.call(f"{domain}.enable", session=session)
        self.events.clear()
        self.call("Page.navigate", {"url": url}, session=session)
        self.wait_for("Page.loadEventFired")
        return session

    def evaluate(self, session: str, expression: str, *, await_promise: bool = False):
        """The value of a JavaScript expression in the page (a promise awaited when asked)."""
        reply = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": await_promise},
            session=session,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"page script failed: {reply['exceptionDetails'].get('text', '')} {expression[:80]}")
        return reply["result"].get("value")

    def requests(self) -> list[str]:
        """URLs the pages requested since the last :meth:`page` / :meth:`open`."""
        return [e["params"]["request"]["url"] for e in self.events if e.get("method") == "Network.requestWillBeSent"]

    def screenshot(self, session: str, path: Path, *, width: int = 1000, height: int = 1300) -> Path:
        """A PNG of the page at ``width`` x ``height`` CSS pixels."""
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session=session)
        data = self.call("Page.captureScreenshot", {"format": "png"}, session=session)["data"]
        path.write_bytes(base64.b64decode(data))
        return path

    def close(self) -> None:
        try:
            self.call("Browser.close")
            self.proc.wait(timeout=10)
        except (OSError, EOFError, TimeoutError, RuntimeError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait(timeout=10)
        finally:
            os.close(self._cmd_w)
            os.close(self._res_r)


def problems(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions, error log entries and failed loads, one line each."""
    out = []
    for e in events:
        method, params = e.get("method"), e.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            out.append("console: " + " ".join(str(a.get("value", a.get("description", ""))) for a in params["args"]))
        elif method == "Runtime.exceptionThrown":
            out.append("uncaught: " + params["exceptionDetails"].get("text", ""))
        elif method == "Log.entryAdded" and params["entry"]["level"] == "error":
            out.append("log: " + params["entry"]["text"])
        elif method == "Network.loadingFailed":
            out.append("failed load: " + params.get("errorText", ""))
    return out


