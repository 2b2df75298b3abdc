"""Open a page in headless Chromium with the network off and report what a reader would see.

Chromium is driven over the DevTools protocol through a pipe (--remote-debugging-pipe: fd 3
in, fd 4 out, one JSON message per NUL), so no driver, no websocket library and no port.
The network is off three ways: DevTools' offline emulation, a proxy that goes nowhere and a
resolver that resolves nothing; every request the page makes is recorded all the same.
"""

from __future__ import annotations

import base64
import json
import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

CANDIDATES = ("/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome")
HOW_TO_GET = ("headless Chromium is not installed: on Debian/Ubuntu run "
              "`apt-get install -y chromium` (CI's .ci/run does this), then run the test again")


def chromium() -> str | None:
    for c in (os.environ.get("ALLOCATOR_CHROMIUM"), *CANDIDATES, shutil.which("chromium")):
        if c and Path(c).is_file() and os.access(c, os.X_OK):
            return c
    return None


class Browser:
    """A headless Chromium talking DevTools over a pipe."""

    def __init__(self, binary: str, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="allocator-chromium-")
        to_child_r, self._to_child = os.pipe()
        self._from_child, from_child_w = os.pipe()

        def plumbing() -> None:  # in the child: fd 3 reads commands, fd 4 writes answers
            r, w = os.dup(to_child_r), os.dup(from_child_w)  # above 4, so neither is lost
            os.dup2(r, 3)  # dup2 makes 3 and 4 inheritable (os.pipe's fds are close-on-exec)
            os.dup2(w, 4)

        args = [binary, "--headless", "--no-sandbox", "--disable-gpu",
                "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
                "--no-first-run", "--no-default-browser-check",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--disable-extensions", "--disable-default-apps",
                "--proxy-server=127.0.0.1:9", "--proxy-bypass-list=<-loopback>",
                "--host-resolver-rules=MAP * ~NOTFOUND", "--hide-scrollbars",
                "--window-size=1000,1400", "about:blank"]
        # close_fds=False keeps fds 3 and 4 (set up by plumbing) open across exec; the
        # browser's own session lets close() end every process it started, so none keeps
        # an inherited descriptor (e.g. a test runner's pipe) open after the test
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, close_fds=False,
                                     preexec_fn=plumbing, start_new_session=True)  # noqa: PLW1509
        os.close(to_child_r)
        os.close(from_child_w)
        self._id = 0
        self._answers: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self._cond = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_child, 1 << 16)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                if "id" in msg:
                    with self._cond:
                        self._answers[msg["id"]] = msg
                        self._cond.notify_all()
                else:
                    self.events.put(msg)

    def send(self, method: str, params: dict[str, Any] | None = None,
             session: str | None = None) -> dict[str, Any]:
        self._id += 1
        k = self._id
        msg: dict[str, Any] = {"id": k, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self._to_child, json.dumps(msg).encode() + b"\0")
        end = time.monotonic() + self.timeout
        with self._cond:
            while k not in self._answers:
                left = end - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"Chromium did not answer {method}")
                self._cond.wait(left)
            answer = self._answers.pop(k)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result", {})

    def close(self) -> None:
        try:
            self.send("Browser.close")
        except Exception:  # noqa: BLE001 - it may be gone already
            pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
        try:  # helpers of the browser (crash handler, zygote) share its process group
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        for fd in (self._to_child, self._from_child):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


#: run in the page: the headline, the charts and a CJK probe (no network, no side effect
#: but a data-probe attribute on the elements whose fonts are asked for)
PAGE_FACTS = r"""
(() => {
  const cjk = /[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]/;
  const headline = {};
  document.querySelectorAll('[data-key]').forEach(e => {
    headline[e.dataset.key] = {text: e.firstChild ? e.firstChild.textContent.trim() : '',
                               value: e.dataset.value === undefined ? null : e.dataset.value};
  });
  const charts = [...document.querySelectorAll('figure.chart')].map(f => {
    const svg = f.querySelector('svg');
    const marks = [...f.querySelectorAll('.mark')];
    const drawn = marks.filter(m => { const b = m.getBBox(); return b.width > 0 || b.height > 0; });
    const r = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {name: f.dataset.chart, marks: marks.length, drawn: drawn.length,
            width: r.width, height: r.height};
  });
  const pick = (sel, k) => {
    for (const e of document.querySelectorAll(sel)) {
      const t = [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('');
      if (cjk.test(t)) { e.setAttribute('data-probe', String(k)); return t; }
    }
    return null;
  };
  const texts = [pick('h1, h2, p, li, td', 0), pick('svg text', 1), pick('pre', 2),
                 pick('th, dd', 3)];
  return JSON.stringify({headline, charts, texts, title: document.title,
                         bodyText: document.body.innerText.length});
})()
"""


def open_report(binary: str, path: Path, timeout: float = 60.0) -> dict[str, Any]:
    """Open path (a file) offline; return console errors, requests, page facts, the fonts
    used for its CJK text and a PDF printed on A4."""
    url = path.resolve().as_uri()
    with Browser(binary, timeout) as b:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        sid = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"]
        for m in ("Runtime.enable", "Log.enable", "Network.enable", "Page.enable",
                  "DOM.enable", "CSS.enable"):
            b.send(m, session=sid)
        b.send("Network.emulateNetworkConditions", {
            "offline": True, "latency": 0, "downloadThroughput": -1, "uploadThroughput": -1},
            session=sid)
        b.send("Page.navigate", {"url": url}, session=sid)
        errors: list[str] = []
        requests: list[str] = []
        loaded = False
        end = time.monotonic() + timeout

        def drain(wait: float) -> None:
            nonlocal loaded
            stop = time.monotonic() + wait
            while time.monotonic() < stop:
                try:
                    ev = b.events.get(timeout=max(0.01, stop - time.monotonic()))
                except queue.Empty:
                    return
                m, p = ev.get("method"), ev.get("params", {})
                if m == "Page.loadEventFired":
                    loaded = True
                elif m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    errors.append(" ".join(str(a.get("value", a.get("description", "")))
                                           for a in p.get("args", [])))
                elif m == "Runtime.exceptionThrown":
                    errors.append(str(p.get("exceptionDetails", {}).get("text")))
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    errors.append(str(p["entry"].get("text")))
                elif m == "Network.requestWillBeSent":
                    requests.append(p.get("request", {}).get("url", ""))

        while not loaded and time.monotonic() < end:
            drain(0.5)
        if not loaded:
            raise TimeoutError(f"{path} did not load")
        b.send("Runtime.evaluate", {"expression": "document.fonts.ready",  # web fonts loaded
                                    "awaitPromise": True}, session=sid)
        drain(1.0)
        res = b.send("Runtime.evaluate", {"expression": PAGE_FACTS, "returnByValue": True},
                     session=sid)
        facts = json.loads(res["result"]["value"])
        doc = b.send("DOM.getDocument", {"depth": 0}, session=sid)["root"]["nodeId"]
        fonts = []
        for k, text in enumerate(facts["texts"]):
            if text is None:
                fonts.append(None)
                continue
            node = b.send("DOM.querySelector", {"nodeId": doc,
                                                "selector": f'[data-probe="{k}"]'},
                          session=sid)["nodeId"]
            used = b.send("CSS.getPlatformFontsForNode", {"nodeId": node}, session=sid)
            fonts.append({"text": text, "fonts": used.get("fonts", [])})
        pdf = b.send("Page.printToPDF", {"paperWidth": 8.27, "paperHeight": 11.69,
                                         "printBackground": True}, session=sid)
        drain(0.5)
    return {"errors": errors, "requests": requests, "facts": facts, "fonts": fonts,
            "pdf": base64.b64decode(pdf["data"])}
