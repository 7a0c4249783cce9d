"""A SHA-256 whose state can be written down and taken up again in another process, so that a
release hashes only the bytes after the first part it does not share with the previous one.

A dump's SHA-256 is of its whole bytes (DCAT's checksum, the download's ETag), and a rebuild
changes a few of its parts: hashing the unchanged ones again was most of a one-change rebuild's
CPU (bench/incremental.py). SHA-256 (FIPS 180-4 §6.2) is a chain over 64-byte blocks: its state
after any prefix is the eight words of the chain, the prefix's length and the bytes of its last
incomplete block. `State` holds them; `Sha256.resume` continues from one.

hashlib cannot be given a state, so this speaks to OpenSSL's SHA256_Init/_Update/_Final (its
libcrypto, which Python's hashlib has already loaded) through ctypes; they release the GIL as
hashlib does. Where they cannot be found (another libcrypto, another platform), or when they do
not give hashlib's digests, `available()` is False and callers hash the whole with hashlib.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache

_BLOCK = 64


class _Context(ctypes.Structure):
    # OpenSSL's SHA256_CTX (include/openssl/sha.h): the chain, the length in bits (low, high
    # words), the pending block (as bytes, `num` of them) and the digest's length.
    _fields_ = (
        ("h", ctypes.c_uint32 * 8),
        ("nl", ctypes.c_uint32),
        ("nh", ctypes.c_uint32),
        ("data", ctypes.c_uint8 * _BLOCK),
        ("num", ctypes.c_uint),
        ("md_len", ctypes.c_uint),
    )


@dataclass(frozen=True)
class State:
    """SHA-256 after `size` bytes: its chain (32 bytes) and the bytes of its last block that
    are not yet hashed (size % 64 of them)."""

    chain: bytes
    pending: bytes
    size: int

    def text(self) -> str:
        """The state as one word: the chain's hex, then ':' and the pending bytes' hex."""
        return self.chain.hex() + (":" + self.pending.hex() if self.pending else "")

    @classmethod
    def parse(cls, text: str, size: int) -> State | None:
        """The state text wrote after size bytes; None when text is not one."""
        chain_hex, _, pending_hex = text.partition(":")
        try:
            chain, pending = bytes.fromhex(chain_hex), bytes.fromhex(pending_hex)
        except ValueError:
            return None
        if len(chain) != 32 or len(pending) != size % _BLOCK:
            return None
        return cls(chain, pending, size)


class Sha256:
    """SHA-256 over bytes given in turns (update), its state readable at any time (state) and
    a digest at the end (hexdigest); resume starts from a saved state."""

    def __init__(self, lib: ctypes.CDLL | None = None) -> None:
        if lib is None:
            lib = _library()
        if lib is None:
            raise RuntimeError("no resumable SHA-256 here (see digest.available)")
        self._lib = lib
        self._context = _Context()
        self._lib.SHA256_Init(ctypes.byref(self._context))

    @classmethod
    def resume(cls, state: State, lib: ctypes.CDLL | None = None) -> Sha256:
        """A SHA-256 that has hashed the bytes of state (without them)."""
        digest = cls(lib)
        context = digest._context
        context.h[:] = struct.unpack(">8I", state.chain)
        bits = state.size * 8
        context.nl, context.nh = bits & 0xFFFFFFFF, (bits >> 32) & 0xFFFFFFFF
        context.data[: len(state.pending)] = state.pending
        context.num = len(state.pending)
        return digest

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Hash data next (bytes, or a writable buffer: a bytearray or a view of one)."""
        size = len(data) if not isinstance(data, memoryview) else data.nbytes
        if not size:
            return
        pointer = data if isinstance(data, bytes) else (ctypes.c_char * size).from_buffer(data)
        self._lib.SHA256_Update(ctypes.byref(self._context), pointer, size)

    def copy(self) -> Sha256:
        """Another SHA-256 that has hashed what this one has (hashlib's copy)."""
        other = Sha256(self._lib)
        ctypes.pointer(other._context)[0] = self._context
        return other

    def state(self) -> State:
        """The state after the bytes hashed so far."""
        context = self._context
        size = ((context.nh << 32) | context.nl) // 8
        chain = struct.pack(">8I", *context.h)
        return State(chain, bytes(context.data[: context.num]), size)

    def hexdigest(self) -> str:
        """The digest of the bytes hashed so far (the object can go on being updated)."""
        copy = _Context()
        ctypes.pointer(copy)[0] = self._context
        out = ctypes.create_string_buffer(32)
        self._lib.SHA256_Final(out, ctypes.byref(copy))
        return out.raw.hex()


def available() -> bool:
    """Whether Sha256 can be used here (OpenSSL's functions found, and giving hashlib's
    digests, resumed or not)."""
    return _library() is not None


@cache
def _library() -> ctypes.CDLL | None:
    # find_library runs `ldconfig -p` in a child process: a fork of the building process
    # (1.6 GB at 1M entries), 0.2 s of a rebuild's dump thread. OpenSSL 3's soname comes first.
    for name in _names():
        if not name:
            continue
        try:
            lib = ctypes.CDLL(name)
            for function in ("SHA256_Init", "SHA256_Update", "SHA256_Final"):
                getattr(lib, function).restype = ctypes.c_int
        except (OSError, AttributeError):
            continue
        lib.SHA256_Update.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_size_t)
        if _agrees(lib):
            return lib
    return None


def _names() -> Iterator[str | None]:
    yield "libcrypto.so.3"
    yield ctypes.util.find_library("crypto")


def _agrees(lib: ctypes.CDLL) -> bool:
    """Whether lib's SHA-256, resumed from a saved state, gives hashlib's digest."""
    data = bytes(range(256)) * 5
    if ctypes.sizeof(_Context) != 112:
        return False
    try:
        first = Sha256(lib)
        first.update(data[:100])
        resumed = Sha256.resume(first.state(), lib)
        resumed.update(data[100:])
        return resumed.hexdigest() == hashlib.sha256(data).hexdigest()
    except (OSError, ValueError):
        return False
