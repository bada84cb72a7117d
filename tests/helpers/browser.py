"""Headless Chromium for the page tests: the page's DOM after its scripts ran, a screenshot, and the value of
an expression once the page has done its work."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--virtual-time-budget=10000",
]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    raise RuntimeError("no Chromium found: install Debian's chromium (.ci/run does)")


def _run(page: Path, profile: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [chromium(), *FLAGS, f"--user-data-dir={profile}", *extra, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


def dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after load (its scripts ran), as HTML text."""
    return _run(page, profile, "--dump-dom").stdout


def screenshot(page: Path, profile: Path, out: Path, size: tuple[int, int] = (1400, 1800)) -> Path:
    _run(page, profile, f"--window-size={size[0]},{size[1]}", f"--screenshot={out}")
    return out


def evaluate(page: Path, profile: Path, expression: str, timeout: float = 180.0, screenshot: Path | None = None):
    """Open ``page`` in headless Chromium in real time and return the first value other than ``null`` of the
    JavaScript ``expression``, evaluated every half second, through the DevTools protocol on a pipe.

    ``--dump-dom`` runs the page in virtual time, which runs out before asynchronous work such as compiling
    WebAssembly has finished; this waits for the page itself. With ``screenshot``, the page as it is then is
    saved there as PNG.
    """
    ours_read, chrome_write = os.pipe()
    chrome_read, ours_write = os.pipe()
    # The protocol pipe: Chromium reads commands from fd 3 and writes replies to fd 4.
    def descriptors() -> None:
        read, write = os.dup(chrome_read), os.dup(chrome_write)  # out of the way of 3 and 4 first
        os.dup2(read, 3)
        os.dup2(write, 4)

    flags = [f for f in FLAGS if not f.startswith("--virtual-time-budget")]
    command = [chromium(), *flags, f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"]
    process = subprocess.Popen(command, pass_fds=(3, 4), preexec_fn=descriptors,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    os.close(chrome_read)
    os.close(chrome_write)
    replies = os.fdopen(ours_read, "rb")
    calls = iter(range(1, 1_000_000))
    buffer = b""

    def call(method: str, session: str | None = None, **params):
        nonlocal buffer
        ident = next(calls)
        message = {"id": ident, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(ours_write, json.dumps(message).encode() + b"\0")
        while True:
            while b"\0" not in buffer:
                chunk = replies.read1(1 << 20)
                if not chunk:
                    raise RuntimeError("Chromium closed the DevTools pipe")
                buffer += chunk
            raw, buffer = buffer.split(b"\0", 1)
            reply = json.loads(raw)
            if reply.get("id") == ident:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                return reply["result"]

    try:
        target = call("Target.createTarget", url=page.resolve().as_uri())["targetId"]
        session = call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            result = call("Runtime.evaluate", session, expression=expression, returnByValue=True)
            if "exceptionDetails" in result:
                raise RuntimeError(f"the expression failed: {result['exceptionDetails'].get('exception', {}).get('description')}")
            if result["result"].get("value") is not None:
                if screenshot is not None:
                    call("Emulation.setDeviceMetricsOverride", session, width=1200, height=900, deviceScaleFactor=1, mobile=False)
                    screenshot.write_bytes(base64.b64decode(call("Page.captureScreenshot", session)["data"]))
                return result["result"]["value"]
            time.sleep(0.5)
        raise TimeoutError(f"{page}: nothing after {timeout:.0f} s")
    finally:
        process.kill()
        process.wait()
        replies.close()
        os.close(ours_write)
