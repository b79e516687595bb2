"""A terminal session with the real ``imgapi`` command (in a pty): the upload progress bar is drawn,
Ctrl-C stops the upload with exit status 130 and says "interrupted" exactly once, and the same command
run again resumes where the server's offset stands."""

from __future__ import annotations

import os
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.cli.conftest import Cli

IMGAPI = str(Path(sys.executable).with_name("imgapi"))


class Terminal:
    """One command in a pseudo-terminal; ``screen`` accumulates everything it drew."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        primary, secondary = os.openpty()
        self.fd = primary
        self.proc = subprocess.Popen(argv, stdin=secondary, stdout=secondary, stderr=secondary, env=env)
        os.close(secondary)
        self.screen = ""

    def read_until(self, text: str, timeout: float = 60.0) -> None:
        self.read_until_re(re.escape(text), timeout)

    def read_until_re(self, pattern: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        text = pattern
        while not re.search(pattern, self.screen):
            assert time.monotonic() < deadline, self.screen
            if select.select([self.fd], [], [], 0.2)[0]:
                try:
                    self.screen += os.read(self.fd, 65536).decode(errors="replace")
                except OSError:  # the command exited and closed the terminal
                    assert re.search(text, self.screen), self.screen
            elif self.proc.poll() is not None:
                assert re.search(text, self.screen), self.screen

    def wait(self, timeout: float = 60.0) -> int:
        code = self.proc.wait(timeout)
        while select.select([self.fd], [], [], 0.2)[0]:
            try:
                chunk = os.read(self.fd, 65536)
            except OSError:
                break
            if not chunk:
                break
            self.screen += chunk.decode(errors="replace")
        os.close(self.fd)
        return code


def test_upload_progress_bar_ctrl_c_and_resume(cli: Cli, tmp_path: Path) -> None:
    u = cli.create()["uuid"]
    src = tmp_path / "disk.img.gz"
    src.write_bytes(os.urandom(6 * 1024 * 1024))
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("IMGAPI_")},
        "IMGAPI_URL": cli.stack.base_url,
        "IMGAPI_CACHE_DIR": str(cli.cache),
        "TERM": "xterm-256color",
        "COLUMNS": "120",
    }
    args = [IMGAPI, "upload", u, str(src), "--chunk-size", str(1024 * 1024)]
    term = Terminal([*args, "--limit-rate", "1M"], env)
    term.read_until("upload disk.img.gz")
    term.read_until_re(r"[2-5]\.\d/6\.3 MB")  # the bar redraws as bytes go: the display is live
    assert "━" in term.screen
    term.proc.send_signal(signal.SIGINT)
    assert term.wait() == 130, term.screen
    assert term.screen.count("interrupted") == 1, term.screen
    assert "run the same command again to resume" in term.screen
    assert "Traceback" not in term.screen

    again = Terminal(args, env)
    assert again.wait() == 0, again.screen
    assert "resuming upload at byte" in again.screen and "resumed at byte" in again.screen
    assert cli.json("get", u)["files"][0]["size"] == src.stat().st_size
