"""`lbx-dbt`: dbt, as a child process that dies with its parent.

dagster-dbt starts dbt with a plain ``subprocess.Popen``, so when the run that started it is
killed (SIGKILL, an OOM kill, a crashed run worker) dbt would keep running, keep the warehouse
open and collide with the rerun. Linux's ``PR_SET_PDEATHSIG`` asks the kernel to send this
process SIGTERM when its parent dies; then dbt runs in this same process.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys

PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    # an ignored SIGTERM is inherited through exec (a shell's background job, a supervisor): the
    # kernel's signal would then do nothing
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG) failed")
    if os.getppid() != parent_pid:  # the parent died before the kernel could be told
        os._exit(1)


def main() -> None:
    die_with_parent(os.getppid())
    from dbt.cli.main import cli

    sys.argv[0] = "dbt"
    sys.exit(cli())


if __name__ == "__main__":
    main()
