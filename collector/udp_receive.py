"""Taking datagrams off a UDP socket: many per system call, without letting go of the GIL.

Python's `socket.recvfrom` takes one datagram per call and lets go of the GIL around each.
When another thread wants the GIL (the store's thread encoding or inserting a batch), every
such call hands it over, and the event loop's thread waits up to CPython's switch interval
(5 ms) to get it back: a read of 4,096 datagrams took 44 ms of wall for 7 ms of CPU, the
kernel's buffer overflowed and an unpaced burst lost up to 11 % (bench/README.md). Linux's
`recvmmsg(2)` takes up to `BATCH` datagrams in one call; called through `ctypes.PyDLL` it
keeps the GIL, which costs nothing because the socket is non-blocking (`MSG_DONTWAIT`).

`receiver()` gives the `recvmmsg` reader where the C library has it and the one-datagram
reader elsewhere. Both return what they read as (payload, sender key) pairs; `address(key)`
turns a key into the address tuple `socket.recvfrom` gives, once per sender (the listener
caches the sender's text by key).
"""

from __future__ import annotations

import ctypes
import errno
import logging
import mmap
import socket
import struct
import sys
from typing import Final, cast

log = logging.getLogger(__name__)

BATCH: Final = 256
"""Datagrams one `recvmmsg` call takes at most."""
MAX_DATAGRAM: Final = 65_536
"""Larger than any UDP payload (65,507): a buffer this size cuts none."""
_NAME_SIZE: Final = 128  # sizeof(struct sockaddr_storage)
_MSG_DONTWAIT: Final = getattr(socket, "MSG_DONTWAIT", 0x40)
_AGAIN: Final = frozenset({errno.EAGAIN, errno.EWOULDBLOCK})
_REFUSED: Final = frozenset({errno.ENOSYS, errno.EPERM, errno.EACCES, errno.EINVAL, errno.EFAULT})
"""Errors that say the call itself is refused (a seccomp filter, an old kernel), not that a
datagram went wrong: every later call would fail the same way."""


class Unsupported(OSError):
    """`recvmmsg` is refused on this system: read with `SingleReceiver` instead."""


class _IoVec(ctypes.Structure):
    _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]


class _MsgHdr(ctypes.Structure):
    _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32), ("iov", ctypes.POINTER(_IoVec)),
                ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p), ("controllen", ctypes.c_size_t),
                ("flags", ctypes.c_int)]


class _MMsgHdr(ctypes.Structure):
    _fields_ = [("hdr", _MsgHdr), ("len", ctypes.c_uint)]


def _recvmmsg() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    """libc's recvmmsg as a function that keeps the GIL, or None where there is none."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        function = ctypes.PyDLL(None, use_errno=True).recvmmsg
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint, ctypes.c_int, ctypes.c_void_p]
    function.restype = ctypes.c_int
    return function


_RECVMMSG: Final = _recvmmsg()


def slot_size(max_message: int) -> int:
    """Bytes kept for each datagram: three more than the longest message, so that a datagram
    cut to this size is still longer than `max_message` once `datagram_frame` has stripped
    its at most two terminator bytes, and the listener counts it as oversize as it would the
    whole datagram."""
    return min(max_message + 3, MAX_DATAGRAM)


class BatchReceiver:
    """`recvmmsg(2)` on one socket: BATCH slots of `size` bytes in an anonymous mapping (only
    the pages datagrams land on are ever touched), each slot's sender address beside it."""

    def __init__(self, sock: socket.socket, size: int, function: ctypes._CFuncPtr) -> None:  # type: ignore[name-defined]
        self._fd = sock.fileno()
        self._size = size
        self._function = function
        self._data = mmap.mmap(-1, BATCH * size)
        self._view = memoryview(self._data)
        self._names = ctypes.create_string_buffer(BATCH * _NAME_SIZE)
        self._names_view = memoryview(self._names).cast("B")
        self._iovs = (_IoVec * BATCH)()
        self._headers = (_MMsgHdr * BATCH)()
        base = ctypes.addressof(ctypes.c_char.from_buffer(self._data))
        names = ctypes.addressof(self._names)
        for i in range(BATCH):
            self._iovs[i].base, self._iovs[i].len = base + i * size, size
            header = self._headers[i].hdr
            header.name, header.namelen = names + i * _NAME_SIZE, _NAME_SIZE
            header.iov, header.iovlen = ctypes.pointer(self._iovs[i]), 1
        self._raw = memoryview(self._headers).cast("B")
        self._pristine = bytes(self._raw)  # (the kernel writes each used header's namelen, len and flags)
        stride = ctypes.sizeof(_MMsgHdr)
        namelen = _MMsgHdr.hdr.offset + _MsgHdr.namelen.offset
        length = _MMsgHdr.len.offset
        self._stride = stride
        self._fields = struct.Struct(f"{namelen}xI{length - namelen - 4}xI{stride - length - 4}x")

    def receive(self) -> tuple[list[tuple[bytes, bytes]], bool]:
        """The datagrams the socket holds, up to BATCH, and whether the call took anything
        (an error queued on the socket, such as an ICMP port unreachable, takes a call).
        Raises `Unsupported` when the system refuses the call itself."""
        count = self._function(self._fd, self._headers, BATCH, _MSG_DONTWAIT, None)
        if count <= 0:
            code = ctypes.get_errno()
            if count == 0 or code in _AGAIN:
                return [], False
            if code == errno.EINTR:
                return [], True
            if code in _REFUSED:
                raise Unsupported(code, f"recvmmsg: {errno.errorcode.get(code, code)}")
            log.debug("udp error: %s", errno.errorcode.get(code, code))
            return [], True
        size = self._size
        data = self._view
        names = self._names_view
        out = []
        start = 0
        for i, (namelen, length) in enumerate(self._fields.iter_unpack(self._raw[:count * self._stride])):
            name = i * _NAME_SIZE
            out.append((data[start:start + length].tobytes(), names[name:name + namelen].tobytes()))
            start += size
        used = count * self._stride
        self._raw[:used] = self._pristine[:used]
        return out, True

    @staticmethod
    def address(key: object) -> tuple[str, int] | tuple[str, int, int, int]:
        """A raw `sockaddr` (a key `receive` gave) as `socket.recvfrom` gives it."""
        key = cast(bytes, key)
        family = int.from_bytes(key[:2], sys.byteorder)
        port = int.from_bytes(key[2:4], "big")
        if family == socket.AF_INET6:
            host = socket.inet_ntop(socket.AF_INET6, key[8:24])
            scope = int.from_bytes(key[24:28], sys.byteorder)
            if scope:
                try:
                    host = f"{host}%{socket.if_indextoname(scope)}"
                except OSError:
                    host = f"{host}%{scope}"
            return host, port, int.from_bytes(key[4:8], "big"), scope
        return socket.inet_ntop(socket.AF_INET, key[4:8]), port


class SingleReceiver:
    """`socket.recvfrom`, one datagram a call, where the C library has no `recvmmsg`."""

    def __init__(self, sock: socket.socket, size: int) -> None:
        self._recvfrom = sock.recvfrom
        self._size = size

    def receive(self) -> tuple[list[tuple[bytes, object]], bool]:
        out: list[tuple[bytes, object]] = []
        took = False
        for _ in range(BATCH):
            try:
                out.append(self._recvfrom(self._size))
            except (BlockingIOError, InterruptedError):
                break
            except OSError as exc:  # e.g. an ICMP error queued on the socket: skip it
                log.debug("udp error: %s", exc)
            took = True
        return out, took

    @staticmethod
    def address(key: object) -> object:
        return key


def receiver(sock: socket.socket, max_message: int, batch: bool = True) -> BatchReceiver | SingleReceiver:
    """The fastest reader this system has for `sock` (`batch=False`: the one-datagram one)."""
    size = slot_size(max_message)
    if batch and _RECVMMSG is not None:
        return BatchReceiver(sock, size, _RECVMMSG)
    return SingleReceiver(sock, size)
