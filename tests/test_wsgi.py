"""The server's process settings (server/wsgi.py): a worker's threads share two malloc arenas,
so that each does not keep its own high-water mark of freed memory (bench/README.md, the 1M
soak: 251 -> 215 MiB per worker at minute 5), and large blocks are given back when freed."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# Eight threads alive at once, each allocating outside Python's small-object allocator; then
# glibc's own account of its arenas (malloc_info: one <heap> per arena).
COUNT_ARENAS = textwrap.dedent(
    """
    import ctypes, re, sys, tempfile, threading
    from server.wsgi import limit_malloc
    if sys.argv[1] == "limited":
        assert limit_malloc()
    together = threading.Barrier(8)
    def work():
        kept = [bytes(100_000) for _ in range(10)]
        together.wait()
    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    libc = ctypes.CDLL(None)
    libc.fopen.restype = ctypes.c_void_p
    with tempfile.NamedTemporaryFile() as f:
        out = ctypes.c_void_p(libc.fopen(f.name.encode(), b"w"))
        libc.malloc_info(0, out)
        libc.fclose(out)
        print(len(re.findall(r'<heap nr="[0-9]+"', open(f.name).read())))
    """
)


# A block of 8 MiB made and freed three times, then one kept: glibc's own account of the
# memory it holds in blocks mapped on their own (mallinfo2's hblkhd).
MAPPED_BLOCKS = textwrap.dedent(
    """
    import ctypes, sys
    from server.wsgi import limit_malloc
    if sys.argv[1] == "limited":
        assert limit_malloc()
    class Info(ctypes.Structure):
        _fields_ = [(name, ctypes.c_size_t) for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks",
            "uordblks", "fordblks", "keepcost")]
    libc = ctypes.CDLL(None)
    libc.mallinfo2.restype = Info
    for _ in range(3):
        block = bytearray(8 << 20)
        del block
    kept = bytearray(8 << 20)
    print(libc.mallinfo2().hblkhd)
    """
)


def run(script: str, mode: str) -> int:
    found = subprocess.run(
        [sys.executable, "-c", script, mode], capture_output=True, text=True, check=True
    )
    return int(found.stdout)


def arenas(mode: str) -> int:
    return run(COUNT_ARENAS, mode)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_served_process_has_two_malloc_arenas_whatever_its_threads() -> None:
    assert arenas("default") > 2  # the check can see more: glibc's default is 8 per core
    assert arenas("limited") == 2


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_a_served_process_gives_back_large_blocks_however_often_it_made_them() -> None:
    # By default the first block freed raises glibc's threshold: the last one comes from an
    # arena, which keeps it when it is freed. Limited, every one is mapped on its own.
    assert run(MAPPED_BLOCKS, "default") < 8 << 20
    assert run(MAPPED_BLOCKS, "limited") >= 8 << 20
