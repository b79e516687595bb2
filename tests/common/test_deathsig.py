"""Children started through imgapi_common.deathsig die with their parent."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import psutil
import pytest

from imgapi_common import deathsig

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")

_PARENT = textwrap.dedent(
    """
    import subprocess, sys, time
    from imgapi_common import deathsig
    child = subprocess.Popen(deathsig.wrap([sys.executable, "-c", "import time; time.sleep(120)"]))
    print(child.pid, flush=True)
    time.sleep(120)
    """
)


def test_child_dies_when_its_parent_is_killed() -> None:
    parent = subprocess.Popen([sys.executable, "-c", _PARENT], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        child = psutil.Process(int(parent.stdout.readline()))
        # The child runs the program itself (exec), not a wrapper around it: wait (with a real
        # deadline; a loaded machine may take a while to exec) until it does.
        deadline = time.monotonic() + 30
        while "time.sleep(120)" not in " ".join(child.cmdline()) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert "time.sleep(120)" in " ".join(child.cmdline())
        parent.kill()
        parent.wait(10)
        _, alive = psutil.wait_procs([child], timeout=10)
        assert not alive
    finally:
        parent.kill()


def test_no_orphan_when_the_parent_is_already_gone() -> None:
    """PARENT_PID is not our parent any more: exit 1 instead of running the program."""
    out = subprocess.run(  # PID 1 is not the launcher's parent: the test runner is
        [sys.executable, "-m", "imgapi_common.deathsig", "1", "15", sys.executable, "-c", "print('ran')"],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert (out.returncode, out.stdout) == (1, "")


def test_wrap_keeps_the_program_and_names_this_process() -> None:
    argv = deathsig.wrap(["/bin/true", "x"])
    assert argv[-2:] == ["/bin/true", "x"] and argv[argv.index("imgapi_common.deathsig") + 1] == str(
        psutil.Process().pid
    )
