"""graph/digest.py: a SHA-256 whose state, written down as text, is taken up again and gives
hashlib's digest (what the dumps' checksums are), wherever the state was taken."""

from __future__ import annotations

import hashlib
import subprocess

import pytest

from graph import digest

DATA = bytes(range(256)) * 41 + b"tail"  # 10,500 bytes

pytestmark = pytest.mark.skipif(
    not digest.available(), reason="no OpenSSL SHA256_* here: the dumps are hashed in full"
)


@pytest.mark.parametrize("at", [0, 1, 63, 64, 65, 127, 128, 4096, 10_499, len(DATA)])
def test_a_state_taken_up_gives_hashlibs_digest(at: int) -> None:
    first = digest.Sha256()
    first.update(DATA[:at])
    assert first.hexdigest() == hashlib.sha256(DATA[:at]).hexdigest()
    text = first.state().text()
    state = digest.State.parse(text, at)
    assert state is not None
    resumed = digest.Sha256.resume(state)
    resumed.update(DATA[at:])
    assert resumed.hexdigest() == hashlib.sha256(DATA).hexdigest()
    # hexdigest does not end the hashing: the first goes on as if it had not been asked.
    first.update(DATA[at:])
    assert first.hexdigest() == hashlib.sha256(DATA).hexdigest()


def test_a_state_that_does_not_fit_its_size_is_not_one() -> None:
    sha = digest.Sha256()
    sha.update(DATA[:70])
    text = sha.state().text()
    assert digest.State.parse(text, 70) is not None
    assert digest.State.parse(text, 71) is None  # six bytes pending, not seven
    assert digest.State.parse("zz" + text[2:], 70) is None
    assert digest.State.parse(text.split(":")[0][:-2] + ":" + text.split(":")[1], 70) is None


def test_openssl_is_found_without_a_child_process(monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL 3 is found by its soname: ctypes.util.find_library runs ldconfig in a child,
    a fork of the building process (1.6 GB at 1M entries) in a rebuild's dump thread."""

    def refused(*args: object, **kwargs: object) -> None:
        raise AssertionError("a child process was started")

    monkeypatch.setattr(subprocess.Popen, "__init__", refused)
    digest._library.cache_clear()
    try:
        assert digest.available()
    finally:
        digest._library.cache_clear()
