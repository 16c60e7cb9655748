"""Read the files of an export (a zip or an unpacked folder) into memory, within size limits.

Zip members are inflated here rather than through `ZipFile.open`, because the standard reader
trusts the declared size: it stops there and reports a bad CRC, so an archive whose headers
lie about its size would look merely "corrupt". Counting the real output of the inflater lets us
name the actual problem and never hold more than the limit in memory. Nothing touches the disk.
"""

from __future__ import annotations

import os
import re
import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol

from lbx_orchestration.core.letterboxd.errors import ExportError

_CHUNK = 64 * 1024
_LOCAL_HEADER = b"PK\x03\x04"
_LOCAL_HEADER_SIZE = 30
_DRIVE = re.compile(r"[A-Za-z]:")


class ByteBudget:
    """How many uncompressed bytes may still be read, shared by every file of one export."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, n: int, source: str, member: str) -> None:
        self.used += n
        if self.used > self.limit:
            raise ExportError(
                f"{source}: {member} inflates past the limit of {self.limit:,} uncompressed bytes for the whole export"
            )


class ExportSource(Protocol):
    name: str
    members: tuple[str, ...]  # files only, '/'-separated, relative to the zip root or folder

    def read(self, member: str) -> bytes: ...


def _check_member_name(source: str, raw: str) -> str:
    name = raw.replace("\\", "/")
    parts = name.split("/")
    if name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise ExportError(f"{source}: entry {raw!r} points outside the archive; refusing it")
    return name


class ZipSource:
    def __init__(self, path: Path, budget: ByteBudget, max_members: int) -> None:
        self.name = path.name
        self._path = path
        self._budget = budget
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError) as exc:
            raise ExportError(f"{self.name}: truncated or corrupt zip ({exc})") from exc
        if len(infos) > max_members:
            raise ExportError(
                f"{self.name}: the archive has {len(infos):,} entries, more than the limit of {max_members:,}"
            )
        declared = sum(info.file_size for info in infos)
        if declared > budget.limit:
            raise ExportError(
                f"{self.name}: the archive declares {declared:,} uncompressed bytes, more than "
                f"the limit of {budget.limit:,}"
            )
        self._infos: dict[str, zipfile.ZipInfo] = {}
        for info in infos:
            name = _check_member_name(self.name, info.filename)
            if name.endswith("/"):
                continue
            if name in self._infos:
                raise ExportError(f"{self.name}: entry {name!r} appears twice in the archive")
            self._infos[name] = info
        self.members = tuple(self._infos)

    def read(self, member: str) -> bytes:
        info = self._infos[member]
        try:
            with open(self._path, "rb") as fh:
                return self._inflate(fh, member, info)
        except OSError as exc:
            raise ExportError(f"{self.name}: cannot read {member} ({exc})") from exc

    def _corrupt(self, member: str, why: str) -> ExportError:
        return ExportError(f"{self.name}: truncated or corrupt zip: {member} {why}")

    def _inflate(self, fh: BinaryIO, member: str, info: zipfile.ZipInfo) -> bytes:
        if info.flag_bits & 0x1:
            raise ExportError(f"{self.name}: {member} is encrypted; export it again unencrypted")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise ExportError(
                f"{self.name}: {member} uses zip compression method {info.compress_type}; "
                f"only stored and deflated entries are supported"
            )
        fh.seek(info.header_offset)
        header = fh.read(_LOCAL_HEADER_SIZE)
        if len(header) != _LOCAL_HEADER_SIZE or not header.startswith(_LOCAL_HEADER):
            raise self._corrupt(member, "has no valid local header")
        name_len, extra_len = struct.unpack("<HH", header[26:30])
        fh.seek(info.header_offset + _LOCAL_HEADER_SIZE + name_len + extra_len)

        out = bytearray()
        crc = 0

        def emit(piece: bytes) -> None:
            nonlocal crc
            if piece:
                self._budget.take(len(piece), self.name, member)
                out.extend(piece)
                crc = zlib.crc32(piece, crc)

        chunks = self._compressed_chunks(fh, member, info.compress_size)
        if info.compress_type == zipfile.ZIP_STORED:
            for chunk in chunks:
                emit(chunk)
        else:
            inflater = zlib.decompressobj(-zlib.MAX_WBITS)
            try:
                for chunk in chunks:
                    data = chunk
                    while data and not inflater.eof:
                        emit(inflater.decompress(data, _CHUNK))
                        data = inflater.unconsumed_tail
                    if inflater.eof:
                        break
                emit(inflater.flush())
            except zlib.error as exc:
                raise self._corrupt(member, f"does not inflate ({exc})") from exc
            if not inflater.eof:
                raise self._corrupt(member, "ends before its compressed data does")
        if len(out) != info.file_size:
            raise self._corrupt(member, f"declares {info.file_size:,} bytes but holds {len(out):,}")
        if crc != info.CRC:
            raise self._corrupt(member, "fails its CRC check")
        return bytes(out)

    def _compressed_chunks(self, fh: BinaryIO, member: str, size: int) -> Iterator[bytes]:
        left = size
        while left > 0:
            chunk = fh.read(min(_CHUNK, left))
            if not chunk:
                raise self._corrupt(member, "is cut short")
            left -= len(chunk)
            yield chunk


class FolderSource:
    def __init__(self, path: Path, budget: ByteBudget, max_members: int) -> None:
        self.name = path.name
        self._root = path.resolve()
        self._budget = budget
        members: list[str] = []
        for dirpath, dirnames, filenames in os.walk(self._root):
            dirnames.sort()
            for filename in sorted(filenames):
                full = Path(dirpath) / filename
                rel = full.relative_to(self._root).as_posix()
                if not full.resolve().is_relative_to(self._root):
                    raise ExportError(f"{self.name}: {rel} links outside the export folder; refusing it")
                members.append(rel)
                if len(members) > max_members:
                    raise ExportError(f"{self.name}: the folder has more than the limit of {max_members:,} files")
        self.members = tuple(members)

    def read(self, member: str) -> bytes:
        out = bytearray()
        try:
            with open(self._root / member, "rb") as fh:
                while chunk := fh.read(_CHUNK):
                    self._budget.take(len(chunk), self.name, member)
                    out.extend(chunk)
        except OSError as exc:
            raise ExportError(f"{self.name}: cannot read {member} ({exc})") from exc
        return bytes(out)


def open_source(path: Path, max_uncompressed_bytes: int, max_members: int) -> ExportSource:
    budget = ByteBudget(max_uncompressed_bytes)
    if path.is_dir():
        return FolderSource(path, budget, max_members)
    if not path.exists():
        raise ExportError(f"{path}: no such file or folder")
    if not path.is_file():
        raise ExportError(f"{path.name}: not a zip file or a folder")
    try:
        with open(path, "rb") as fh:
            magic = fh.read(4)
    except OSError as exc:
        raise ExportError(f"{path.name}: cannot read it ({exc})") from exc
    if magic not in (_LOCAL_HEADER, b"PK\x05\x06") and not zipfile.is_zipfile(path):
        raise ExportError(f"{path.name}: not a zip file or a folder (expected a Letterboxd data export)")
    return ZipSource(path, budget, max_members)
