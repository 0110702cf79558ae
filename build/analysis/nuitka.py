"""Readers: a Nuitka onefile binary and a Nuitka-compiled executable, as region trees."""

from __future__ import annotations

from build.analysis import elf, symbols
from build.analysis.model import ARCHIVE_INDEX, BOOTLOADER
from build.analysis.nuitka_constants import find_blob, looks_compiled
from build.analysis.nuitka_payload import Payload, PayloadFile, find_payload
from build.analysis.regions import Content, Region, bucket, fill_gaps
from build.analysis.streams import identity, zstd_stream

NUITKA = "nuitka"
EXECUTABLE = "[executable]"


def onefile_regions(data: bytes, *, label: str) -> tuple[tuple[Region, ...], Payload]:
    """Regions covering all of a onefile binary: the starter ([bootloader]) around the payload."""
    payload = find_payload(data, label=label)
    starter = tuple(s for s in ((0, payload.start), (payload.end, len(data))) if s[0] < s[1])
    table_span = ((payload.table_start, payload.table_start + payload.table_stored),)
    # b"KA?" and the length trailer: index bytes outside the (possibly compressed) file table.
    framing = bucket("[payload framing]", ((payload.start, payload.table_start), (payload.end - 8, payload.end)),
                     distribution=NUITKA, kind="index")
    table = Region(name="", kind="archive", spans=table_span, raw=len(payload.table),
                   content=Content(raw_size=len(payload.table), smap=payload.smap,
                                   compressed=payload.mode == "stream"),
                   children=_table_children(payload, label=label))
    inside = Region(name="", kind="archive", spans=((payload.start, payload.end),), raw=payload.end - payload.start,
                    children=(framing, table))
    return (bucket(BOOTLOADER, starter, distribution=NUITKA, kind="bootloader"), inside), payload


def _table_children(payload: Payload, *, label: str) -> tuple[Region, ...]:
    headers = []
    regions: list[Region] = []
    for f in payload.files:
        headers.append(f.header)
        if f.link_target is not None or f.data[0] == f.data[1]:
            continue
        regions.append(_payload_file(payload, f, label=label))
    # The empty name that ends the table.
    last = max((max(f.header[1], f.data[1]) for f in payload.files), default=0)
    headers.append((last, len(payload.table)))
    regions.append(bucket(ARCHIVE_INDEX, tuple(h for h in headers if h[0] < h[1]), distribution=NUITKA, kind="index"))
    return fill_gaps(regions, 0, len(payload.table), payload.table, what=f"{label}: Nuitka payload",
                     distribution=NUITKA)


def _payload_file(payload: Payload, f: PayloadFile, *, label: str) -> Region:
    stored = payload.table[f.data[0]:f.data[1]]
    if payload.mode == "archive":
        raw, _, smap = zstd_stream(stored, what=f"{label}: payload file {f.name!r}")
        content = Content(raw_size=len(raw), smap=smap, compressed=True)
    else:
        raw, content = stored, Content(raw_size=len(stored), smap=identity(len(stored)), compressed=False)
    return file_region(f.name, raw, spans=(f.data,), content=content)


def file_region(name: str, raw: bytes, *, spans: tuple[tuple[int, int], ...], content: Content | None,
                path: str | None = None) -> Region:
    """A file whose bytes are `raw` (`path`: its name in the artifact, if `name` is not): a
    Nuitka-compiled executable is expanded into its constants; an ELF file gets its section
    drill-down."""
    if content is None:
        content = Content(raw_size=len(raw), smap=identity(len(raw)), compressed=False)
    ranges = elf.section_ranges(raw)
    if ranges is not None:
        blob = find_blob(raw) if looks_compiled(raw) else None
        if blob is not None:
            return Region(name=name, kind="executable", spans=spans, raw=len(raw), file=name, content=content,
                          children=compiled_regions(raw, ranges, blob))
        return Region(name=name, kind=elf.file_kind(path or name), spans=spans, raw=len(raw), file=name,
                      content=content, sections=ranges, soname=elf.soname(raw))
    return Region(name=name, kind="data", spans=spans, raw=len(raw), file=name)


def compiled_regions(raw: bytes, ranges: elf.Ranges, blob) -> tuple[Region, ...]:
    """A Nuitka-compiled executable: its constants blob per module (exact), the bytecode modules
    (exact), and the rest, compiled code plus the Python runtime, as one guessed region."""
    regions: list[Region] = []
    index_spans: list[tuple[int, int]] = []
    for part in blob.parts:
        index_spans.append(part.header)
        if part.name == ".bytecode":
            body_start, body_end = part.body
            covered = [m.span for m in blob.bytecode]
            for m in blob.bytecode:
                regions.append(Region(name=f"bytecode/{m.module}", kind="module", spans=(m.span,), raw=m.span[1] - m.span[0],
                                      module=m.module))
            if covered:
                index_spans += [(body_start, covered[0][0]), (covered[-1][1], body_end)]
            else:
                regions.append(Region(name="bytecode", kind="module", spans=(part.body,),
                                      raw=body_end - body_start, distribution=NUITKA, guess=True))
        elif part.name == "":
            regions.append(Region(name="constants/[shared]", kind="constants", spans=(part.body,),
                                  raw=part.body[1] - part.body[0], module="[shared constants]",
                                  distribution=NUITKA, guess=True))
        elif part.name == ".files":
            regions.append(Region(name="constants/.files", kind="data", spans=(part.body,),
                                  raw=part.body[1] - part.body[0], module="[embedded files]",
                                  distribution=NUITKA, guess=True))
        else:
            regions.append(Region(name=f"constants/{part.name}", kind="constants", spans=(part.body,),
                                  raw=part.body[1] - part.body[0], module=part.name))
    regions.append(bucket(ARCHIVE_INDEX, tuple(s for s in index_spans if s[0] < s[1]), distribution=NUITKA,
                          kind="index"))
    rest = tuple(s for s in ((0, blob.start), (blob.end, len(raw))) if s[0] < s[1])
    # With a symbol table (Nuitka's --unstripped), each module's compiled functions and objects
    # are that module's row: Nuitka names them after the module (build.analysis.nuitka_symbols).
    for module, spans in sorted(symbols.module_spans(raw).items()):
        inside = _intersect(spans, rest)
        if not inside:
            continue
        regions.append(Region(name=f"code/{module}", kind="code", spans=inside, raw=sum(e - s for s, e in inside),
                              module=module, sections=elf.clip(ranges, inside)))
        rest = _subtract(rest, inside)
    regions.append(Region(name=EXECUTABLE, kind="code", spans=rest, raw=sum(e - s for s, e in rest),
                          module="[compiled code and Python runtime]", distribution=NUITKA, guess=True,
                          sections=elf.clip(ranges, rest)))
    return fill_gaps(regions, 0, len(raw), raw, what="Nuitka constants blob", distribution=NUITKA)


Spans = tuple[tuple[int, int], ...]


def _intersect(spans: Spans, within: Spans) -> Spans:
    """The parts of sorted `spans` inside sorted `within`."""
    out = []
    for s, e in spans:
        for ws, we in within:
            lo, hi = max(s, ws), min(e, we)
            if lo < hi:
                out.append((lo, hi))
    return tuple(out)


def _subtract(spans: Spans, remove: Spans) -> Spans:
    """Sorted `spans` without the sorted, disjoint `remove` (which lie inside them)."""
    out = []
    for s, e in spans:
        pos = s
        for rs, re_ in remove:
            if re_ <= pos or rs >= e:
                continue
            if rs > pos:
                out.append((pos, rs))
            pos = max(pos, re_)
        if pos < e:
            out.append((pos, e))
    return tuple(out)
