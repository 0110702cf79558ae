"""A real report page in a real headless Chromium, driven over the DevTools protocol.

Chromium talks CDP over a pipe (--remote-debugging-pipe: commands on fd 3, replies on fd 4, one
JSON message per NUL-terminated frame), so the test needs no websocket library and no port. Every
request the browser makes is recorded twice: by CDP's Network domain and by a recording HTTP proxy
on 127.0.0.1 that all non-file traffic would have to go through.
"""

from __future__ import annotations

import http.server
import json
import os
import queue
import shutil
import subprocess
import threading
import time
from base64 import b64decode
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from build import proc
from build.report import write_profile_reports

HOSTILE = "<script>alert(1)</script>"
WAIT = 60.0  # an upper bound for things that take well under a second; reached only on failure
# Chromium's own background calls (updater, network time, sign-in) that no flag turns off in new
# headless mode; they come from the browser, never from a page. No CDN or font host is among them.
BROWSER_OWN_HOSTS = ("update.googleapis.com", "clients2.google.com", "accounts.google.com",
                     "optimizationguide-pa.googleapis.com", "safebrowsing.googleapis.com", "redirector.gvt1.com",
                     "edgedl.me.gvt1.com")


def page_requests(proxy: RecordingProxy) -> list[str]:
    """What went through the proxy, less the browser's own background calls."""
    def host(request: str) -> str:
        target = request.split(" ", 1)[1]
        return target.split("://", 1)[-1].split("/", 1)[0].split(":", 1)[0]

    return [r for r in proxy.requests if host(r) not in BROWSER_OWN_HOSTS]


class RecordingProxy(http.server.ThreadingHTTPServer):
    """Answers every request with 403 and remembers it."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _record(self) -> None:
                proxy.requests.append(f"{self.command} {self.path}")
                self.send_error(403)

            do_GET = do_POST = do_HEAD = do_CONNECT = do_PUT = do_OPTIONS = _record

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


class Browser:
    """Headless Chromium with a CDP session on one page."""

    def __init__(self, workdir: Path, proxy_port: int) -> None:
        chromium = proc.require_tool("chromium")
        (workdir / "profile").mkdir(parents=True)
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()

        def wire_pipes() -> None:  # runs in the child: CDP expects fd 3 (in) and fd 4 (out)
            os.dup2(to_chrome_r, 3)
            os.dup2(from_chrome_w, 4)

        self.log = workdir / "chromium.log"
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={workdir / 'profile'}", "--remote-debugging-pipe",
                 f"--proxy-server=http://127.0.0.1:{proxy_port}", "--proxy-bypass-list=<-loopback>",
                 "--window-size=1280,1000", "about:blank"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=log, preexec_fn=wire_pipes, pass_fds=(3, 4))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._next_id = 0
        self._replies: dict[int, dict] = {}
        self.events: list[dict] = []
        self._inbox: queue.Queue[dict | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Network", "Runtime"):
            self.call(f"{domain}.enable", session=True)

    def _read(self) -> None:
        buffer = b""
        while chunk := os.read(self._from_chrome, 1 << 16):
            buffer += chunk
            while b"\0" in buffer:
                frame, buffer = buffer.split(b"\0", 1)
                self._inbox.put(json.loads(frame))
        self._inbox.put(None)

    def _pump(self, deadline: float) -> None:
        message = self._inbox.get(timeout=max(0.01, deadline - time.monotonic()))
        if message is None:
            raise RuntimeError(f"chromium closed the pipe; see {self.log}")
        if "id" in message:
            self._replies[message["id"]] = message
        else:
            self.events.append(message)

    def call(self, method: str, params: dict | None = None, *, session: bool = False) -> dict:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = self.session
        os.write(self._to_chrome, json.dumps(message).encode() + b"\0")
        deadline = time.monotonic() + WAIT
        while self._next_id not in self._replies:
            self._pump(deadline)
        reply = self._replies.pop(self._next_id)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply["result"]

    def wait_event(self, method: str) -> dict:
        deadline = time.monotonic() + WAIT
        while True:
            for event in self.events:
                if event["method"] == method:
                    return event
            self._pump(deadline)

    def js(self, expression: str) -> Any:
        result = self.call("Runtime.evaluate", {"expression": expression, "returnByValue": True}, session=True)
        if "exceptionDetails" in result:
            raise AssertionError(f"page script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def until(self, expression: str) -> Any:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            value = self.js(expression)
            if value:
                return value
            time.sleep(0.05)
        raise AssertionError(f"page never satisfied {expression!r}")

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, queue.Empty, OSError):
            pass
        try:
            self.proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_chrome)


@pytest.fixture(scope="module")
def page(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Browser, RecordingProxy, Path]]:
    from synthetic_archives import dist_with_manifest
    from synthetic_archives import make_archive

    tmp = tmp_path_factory.mktemp("browser")
    dist = dist_with_manifest(tmp, make_archive(tmp / "src").path)
    entry = "/w/slimfreeze_entry.py"  # an import graph, for the retained-size table
    graph = {"root": entry, "nodes": {n: {"kind": k, "file": None} for n, k in {
        entry: "Script", "app.main": "SourceModule", "paho": "Package", "paho.mqtt.client": "SourceModule"}.items()},
        "edges": [[entry, "app.main"], ["app.main", "paho.mqtt.client"], ["paho.mqtt.client", "paho"]]}
    report = write_profile_reports(dist, tmp / "size_reports" / "min", graph=graph)
    proxy = RecordingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    browser = Browser(tmp / "chromium", proxy.server_address[1])
    try:
        browser.call("Page.navigate", {"url": (report.parent / "index.html").as_uri()}, session=True)
        browser.wait_event("Page.loadEventFired")
        browser.until("document.body.getAttribute('data-ready') === '1'")
        yield browser, proxy, report.parent / "index.html"
    finally:
        browser.close()
        proxy.shutdown()
        print(f"chromium log: {browser.log}")


def test_page_renders_with_summary_and_profile(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    assert browser.js("document.getElementById('title').textContent") == "Size report: min"
    summary = browser.js("document.getElementById('summary').textContent")
    assert "smoke passed" in summary and "flash image 104 B" in summary
    assert browser.js("document.getElementById('profile-body').textContent") == 'name"min"'
    assert '"schema": "slimfreeze.manifest/1"' in browser.js("document.getElementById('manifest').textContent")
    assert browser.js("document.getElementById('links').textContent") == "telemetry \u2192 slimfreeze (0 bytes)"


def test_retained_table_shows(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    names = browser.js("Array.from(document.querySelectorAll('#retained tbody tr')).map(tr => tr.cells[0].textContent)")
    assert names == ["paho", "paho.mqtt.client"]  # same bytes: by name
    assert browser.js("document.getElementById('retained').getBoundingClientRect().height") > 50


def test_treemap_has_nodes_and_zooms(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    names = browser.js("Array.from(document.querySelectorAll('#treemap > .tm-node')).map(n => n.dataset.name)")
    assert "pyinstaller" in names and "paho-mqtt" in names and len(names) >= 5
    browser.js("document.querySelector('#treemap > .tm-node[data-name=\"pyinstaller\"]').click()")
    crumbs = browser.js("Array.from(document.querySelectorAll('#crumbs button')).map(b => b.textContent)")
    assert len(crumbs) == 2 and crumbs[1].startswith("pyinstaller")
    inner = browser.js("Array.from(document.querySelectorAll('#treemap > .tm-node')).map(n => n.dataset.name)")
    assert "[bootloader]" in inner
    browser.js("document.querySelector('#crumbs button').click()")  # back to the top
    assert browser.js("document.querySelectorAll('#crumbs button').length") == 1


def test_search_filters_the_table(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    total = browser.js("document.querySelectorAll('#rows-body tr').length")
    shown = browser.js("""(() => { const s = document.getElementById('search');
        s.value = 'paho'; s.dispatchEvent(new Event('input'));
        return Array.from(document.querySelectorAll('#rows-body tr')).map(tr => tr.textContent); })()""")
    assert 0 < len(shown) < total and all("paho" in row.lower() for row in shown)
    browser.js("(() => { const s = document.getElementById('search'); s.value = '';"
               " s.dispatchEvent(new Event('input')); })()")
    assert browser.js("document.querySelectorAll('#rows-body tr').length") == total


def test_table_sorts_by_a_clicked_column(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    browser.js("document.querySelector('#rows-head th[data-key=\"name\"]').click()")
    names = browser.js("Array.from(document.querySelectorAll('#rows-body .rowname')).map(s => s.textContent)")
    assert len(names) > 10 and names == sorted(names)
    browser.js("document.querySelector('#rows-head th[data-key=\"stored\"]:nth-child(2)').click()")


def test_hostile_name_is_text_and_nothing_runs(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, _, _ = page
    names = browser.js("Array.from(document.querySelectorAll('#rows-body .rowname')).map(s => s.textContent)")
    assert "slimfreeze/" + HOSTILE in names
    assert browser.js("document.querySelectorAll('script').length") == 2  # ours only
    assert not [e for e in browser.events if e["method"] == "Page.javascriptDialogOpening"]


def test_nothing_is_requested_from_the_network(page: tuple[Browser, RecordingProxy, Path]) -> None:
    browser, proxy, index = page
    urls = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
    assert urls and all(url == index.as_uri() for url in urls), urls
    assert page_requests(proxy) == []
    errors = [e for e in browser.events if e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error"]
    assert errors == []  # e.g. no Content-Security-Policy violation was reported


def test_the_network_checks_can_fail(tmp_path: Path) -> None:
    """Control: a page that does load something from the network is caught by both checks."""
    control = tmp_path / "control.html"
    control.write_text('<!DOCTYPE html><img src="http://cdn.example.test/logo.png"><p>control</p>')
    proxy = RecordingProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    browser = Browser(tmp_path / "chromium", proxy.server_address[1])
    try:
        browser.call("Page.navigate", {"url": control.as_uri()}, session=True)
        browser.wait_event("Page.loadEventFired")
        urls = [e["params"]["request"]["url"] for e in browser.events if e["method"] == "Network.requestWillBeSent"]
        assert "http://cdn.example.test/logo.png" in urls
        assert "GET http://cdn.example.test/logo.png" in page_requests(proxy)
    finally:
        browser.close()
        proxy.shutdown()


def test_screenshot(page: tuple[Browser, RecordingProxy, Path], tmp_path: Path) -> None:
    browser, _, _ = page
    png = b64decode(browser.call("Page.captureScreenshot", {"format": "png"}, session=True)["data"])
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    (tmp_path / "report.png").write_bytes(png)
    if os.environ.get("SLIMFREEZE_SCREENSHOT"):  # to look at it: SLIMFREEZE_SCREENSHOT=/tmp/x.png pytest ...
        shutil.copy(tmp_path / "report.png", os.environ["SLIMFREEZE_SCREENSHOT"])
