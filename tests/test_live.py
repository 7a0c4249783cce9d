"""The ports of tests/live.py: concurrent pytest sessions on one machine never share one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import live
import pytest
from live import free_port

TESTS = Path(__file__).resolve().parent
# A second session: it claims a port, says which, and holds it until its stdin closes.
HOLDER = (
    f"import sys; sys.path.insert(0, {str(TESTS)!r}); from live import free_port; "
    "print(free_port(), flush=True); sys.stdin.read()"
)


def test_a_port_is_below_the_ephemeral_range() -> None:
    """No outgoing connection and no bind to port 0 (the kernel's choice) can take it."""
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    ports = [free_port() for _ in range(3)]
    assert all(port < low for port in ports), (ports, low)
    assert len(set(ports)) == 3


def test_a_port_another_session_holds_is_not_given(monkeypatch: pytest.MonkeyPatch) -> None:
    with subprocess.Popen(
        [sys.executable, "-c", HOLDER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdin is not None
        held = int(holder.stdout.readline())
        monkeypatch.setattr(live, "PORTS", range(held, held + 1))
        with pytest.raises(RuntimeError, match="no free port"):
            free_port()
        holder.stdin.close()  # the session ends: its ports are free again
    assert free_port() == held
