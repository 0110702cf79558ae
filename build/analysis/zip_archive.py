"""Members of a zip archive (PyInstaller's base_library.zip) as regions covering every byte."""

from __future__ import annotations

import io
import struct
import zipfile

from build.analysis.model import ARCHIVE_INDEX
from build.analysis.regions import Region, bucket, fill_gaps
from build.errors import ArtifactError

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zipfile.structFileHeader


def module_of_member(path: str) -> str | None:
    """encodings/__init__.pyc -> encodings; collections/abc.pyc -> collections.abc."""
    if not path.endswith((".pyc", ".py")):
        return None
    dotted = path.rsplit(".", 1)[0].replace("/", ".")
    return dotted.removesuffix(".__init__")


def zip_regions(data: bytes, *, what: str, distribution: str | None = None) -> tuple[Region, ...]:
    """One region per member (local header + data + descriptor), the central directory and end
    record as [archive index], gaps as [padding]/[unattributed]."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = archive.infolist()
        index_start = archive.start_dir
    except (zipfile.BadZipFile, ValueError, OSError, struct.error) as err:
        raise ArtifactError(f"{what} is not a readable zip archive ({err})") from None
    regions: list[Region] = []
    for info in infos:
        start = info.header_offset
        header = data[start:start + _LOCAL_HEADER.size]
        if len(header) < _LOCAL_HEADER.size or header[:4] != zipfile.stringFileHeader:
            raise ArtifactError(f"{what} is corrupted: member {info.filename!r} has no local header")
        fields = _LOCAL_HEADER.unpack(header)
        name_len, extra_len = fields[10], fields[11]
        end = start + _LOCAL_HEADER.size + name_len + extra_len + info.compress_size
        if info.flag_bits & 0x08:  # a data descriptor follows the data
            end += 16 if data[end:end + 4] == b"PK\x07\x08" else 12
        if end > index_start:
            raise ArtifactError(f"{what} is truncated or corrupted: member {info.filename!r} runs past "
                                f"the central directory")
        # raw: the member's bytes once inflated (its headers are not compressed).
        raw = end - start - info.compress_size + info.file_size
        regions.append(Region(name=info.filename, kind="module" if module_of_member(info.filename) else "data",
                              spans=((start, end),), raw=raw, module=module_of_member(info.filename),
                              file=info.filename, distribution=distribution))
    regions.append(bucket(ARCHIVE_INDEX, ((index_start, len(data)),), distribution=distribution, kind="index"))
    return fill_gaps(regions, 0, len(data), data, what=what, distribution=distribution)
