"""Render a report page in headless Chromium and say whether it displayed correctly.

Chromium is driven over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``: JSON
messages separated by NUL bytes on file descriptors 3 and 4), so no websocket library or
webdriver is needed; the page itself is loaded unmodified (its Content-Security-Policy forbids
scripts, and DevTools evaluation is not subject to it). Install Chromium on Debian/Ubuntu with
``apt-get install -y chromium``.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["find_chromium", "BrowserCheck", "check_page", "CHROMIUM_FLAGS"]

# Headless, no sandbox (needed as root in containers), and nothing that talks to the network.
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run", "--disable-dev-shm-usage", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
)
TILE_PX = 6000
_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """Path of a Chromium/Chrome executable ($GENBENCH_CHROMIUM first), or None."""
    env = os.environ.get("GENBENCH_CHROMIUM")
    if env:
        return env if Path(env).is_file() else None
    for name in _CANDIDATES:
        p = shutil.which(name)
        if p:
            return p
    return None


@dataclass
class BrowserCheck:
    """What the browser saw: every image with its natural size, console/log errors, a screenshot."""

    images: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    title: str = ""
    page_height: int = 0
    screenshot: bytes | None = None  # the first tile
    screenshots: list[bytes] = field(default_factory=list)  # the whole page, top to bottom

    @property
    def broken_images(self) -> list[dict[str, Any]]:
        """Images that did not load (incomplete or zero natural width)."""
        return [i for i in self.images if not (i["complete"] and i["naturalWidth"] > 0)]


class _Pipe:
    """CDP over the remote-debugging pipe: send commands, wait for replies, keep every event."""

    def __init__(self, proc: subprocess.Popen[bytes], write_fd: int, read_fd: int) -> None:
        self.proc, self.wfd, self.rfd = proc, write_fd, read_fd
        self.next_id = 0
        self.replies: dict[int, dict[str, Any]] = {}
        self.events: queue.Queue[dict[str, Any]] = queue.Queue()
        self.all_events: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        threading.Thread(target=self._reader, daemon=True).start()

    def _reader(self) -> None:
        buf = b""
        while True:
            try:
                chunk = os.read(self.rfd, 1 << 16)
            except OSError:
                chunk = b""
            if not chunk:
                with self.cond:
                    self.cond.notify_all()
                return
            buf += chunk
            while b"\0" in buf:
                raw, buf = buf.split(b"\0", 1)
                msg = json.loads(raw)
                with self.cond:
                    if "id" in msg:
                        self.replies[msg["id"]] = msg
                    else:
                        self.all_events.append(msg)
                        self.events.put(msg)
                    self.cond.notify_all()

    def send(self, method: str, params: dict[str, Any] | None = None, session: str | None = None,
             timeout: float = 30.0) -> dict[str, Any]:
        self.next_id += 1
        mid = self.next_id
        msg: dict[str, Any] = {"id": mid, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        os.write(self.wfd, json.dumps(msg).encode() + b"\0")
        deadline = time.monotonic() + timeout
        with self.cond:
            while mid not in self.replies:
                left = deadline - time.monotonic()
                if left <= 0 or self.proc.poll() is not None:
                    raise RuntimeError(f"Chromium did not answer {method} within {timeout:.0f} s")
                self.cond.wait(min(left, 0.5))
            reply = self.replies.pop(mid)
        if "error" in reply:
            raise RuntimeError(f"Chromium refused {method}: {reply['error']}")
        return reply.get("result", {})

    def wait_event(self, method: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"Chromium sent no {method} within {timeout:.0f} s")
            try:
                ev = self.events.get(timeout=min(left, 0.5))
            except queue.Empty:
                continue
            if ev.get("method") == method:
                return ev


_IMAGES_JS = ("JSON.stringify({title: document.title, height: document.documentElement.scrollHeight, "
              "images: Array.from(document.images).map(i => ({id: i.id, alt: i.alt, complete: i.complete, "
              "naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight, "
              "scheme: (i.getAttribute('src') || '').split(':')[0]}))})")


def check_page(html_path: str | os.PathLike[str], *, chromium: str | None = None, width: int = 1400,
               screenshot: bool = True, timeout: float = 60.0) -> BrowserCheck:
    """Load ``html_path`` in headless Chromium; return its images, console/log errors and a screenshot."""
    exe = chromium or find_chromium()
    if exe is None:
        raise FileNotFoundError("Chromium not found (apt-get install -y chromium, or set GENBENCH_CHROMIUM)")
    url = Path(html_path).resolve().as_uri()
    to_child_r, to_child_w = os.pipe()
    from_child_r, from_child_w = os.pipe()
    # Copies above 10, so that placing them on 3 and 4 in the child never overwrites the other end.
    child_in = fcntl.fcntl(to_child_r, fcntl.F_DUPFD_CLOEXEC, 10)
    child_out = fcntl.fcntl(from_child_w, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(to_child_r)
    os.close(from_child_w)

    def _fds() -> None:  # in the child: the protocol expects its pipe on fds 3 (in) and 4 (out)
        os.dup2(child_in, 3)  # dup2 leaves 3 and 4 inheritable; every other fd is close-on-exec (PEP 446)
        os.dup2(child_out, 4)

    with tempfile.TemporaryDirectory(prefix="genbench-chromium-") as profile:
        cmd = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
        try:
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, preexec_fn=_fds, close_fds=False)
        finally:
            os.close(child_in)
            os.close(child_out)
        try:
            cdp = _Pipe(proc, to_child_w, from_child_r)
            target = cdp.send("Target.createTarget", {"url": "about:blank"}, timeout=timeout)["targetId"]
            sid = cdp.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
            for domain in ("Page", "Runtime", "Log"):
                cdp.send(f"{domain}.enable", session=sid)
            cdp.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=sid)
            n_before = len(cdp.all_events)
            cdp.send("Page.navigate", {"url": url}, session=sid)
            cdp.wait_event("Page.loadEventFired", timeout)
            time.sleep(0.3)  # let late console/log events arrive
            res = cdp.send("Runtime.evaluate", {"expression": _IMAGES_JS, "returnByValue": True}, session=sid)
            info = json.loads(res["result"]["value"])
            out = BrowserCheck(images=info["images"], title=info["title"], page_height=int(info["height"]))
            for ev in cdp.all_events[n_before:]:
                m, p = ev.get("method"), ev.get("params", {})
                if m == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                    out.errors.append("console." + p["type"] + ": " + " ".join(
                        str(a.get("value", a.get("description", ""))) for a in p.get("args", [])))
                elif m == "Runtime.exceptionThrown":
                    out.errors.append("exception: " + json.dumps(p.get("exceptionDetails", {}))[:500])
                elif m == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                    e = p["entry"]
                    out.errors.append(f"log.{e.get('source')}: {e.get('text')} {e.get('url', '')}".strip())
            if screenshot:
                # The whole page, in tiles (one bitmap is limited to about 16 000 px).
                h = max(out.page_height, 900)
                cdp.send("Emulation.setDeviceMetricsOverride",
                         {"width": width, "height": min(h, TILE_PX), "deviceScaleFactor": 1, "mobile": False},
                         session=sid)
                for y in range(0, h, TILE_PX):
                    clip = {"x": 0, "y": y, "width": width, "height": min(TILE_PX, h - y), "scale": 1}
                    shot = cdp.send("Page.captureScreenshot",
                                    {"format": "png", "clip": clip, "captureBeyondViewport": True},
                                    session=sid, timeout=timeout)
                    out.screenshots.append(base64.b64decode(shot["data"]))
                out.screenshot = out.screenshots[0]
            try:
                cdp.send("Browser.close", timeout=5)
            except RuntimeError:
                pass
            return out
        finally:
            os.close(to_child_w)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            os.close(from_child_r)
