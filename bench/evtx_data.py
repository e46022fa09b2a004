#!/usr/bin/env python3
"""Build a large EVTX file for the benchmark from the real chunks of the public samples.

    python bench/evtx_data.py CHUNKS OUT.evtx [MIX]

Writing EVTX (binary XML with templates) from scratch is a project of its
own, so this takes the one chunk of each public sample
(``../shared/corpus/public/evtx-*/*.evtx``), repeats them CHUNKS times in
turn, and renumbers each record's ``EventRecordID`` so that every channel of
every computer counts up without gaps, as a live log does: no duplicate
records for the case store to drop, and no gap events. The value is patched
where the record's binary XML holds it (the 8-byte substitution value equal
to the old id), and the chunk's checksums are recomputed.

MIX (``MIXES``) picks the samples: ``all`` of them, or ``exchange`` for what an
Exchange server's own logs hold, the MSExchange Management cmdlet records and
the PowerShell 4103/4104/800 records, whose text fields take the most mapping.
"""

from __future__ import annotations

import struct
import sys
import zlib
from collections import defaultdict
from pathlib import Path

import orjson
from evtx import PyEvtxParser

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parent.parent / "shared" / "corpus" / "public"
HEADER = 4096
CHUNK = 65536
RECORD_MAGIC = b"\x2a\x2a\x00\x00"


MIXES = {
    "all": None,
    "exchange": ("ID6-Failed_to_install_an_Exchange_transport_agent.evtx",
                 "ID800-4103-4104-Clear_event_log_attempt.evtx"),
}


def sample_chunks(mix: str = "all") -> list[tuple[bytes, dict[int, tuple[int, str]]]]:
    """(chunk bytes, header record number -> (EventRecordID, computer|channel)) per sample of the mix."""
    chunks = []
    names = MIXES[mix]
    for path in sorted([*SAMPLES.glob("evtx-to-mitre-attack/*.evtx"), *SAMPLES.glob("evtx-attack-samples/*.evtx")]):
        if names is not None and path.name not in names:
            continue
        data = path.read_bytes()
        ids = {}
        for record in PyEvtxParser(str(path)).records_json():
            system = orjson.loads(record["data"])["Event"]["System"]
            ids[record["event_record_id"]] = (system["EventRecordID"], f"{system['Computer']}|{system['Channel']}")
        chunks.append((data[HEADER:HEADER + CHUNK], ids))
    return chunks


def renumbered(chunk: bytes, ids: dict[int, tuple[int, str]], counters: dict[str, int]) -> bytes:
    out = bytearray(chunk)
    free = struct.unpack_from("<I", out, 48)[0]
    offset = 512
    while offset + 24 <= free and out[offset:offset + 4] == RECORD_MAGIC:
        size, number = struct.unpack_from("<IQ", out, offset + 4)
        if number in ids:
            old, stream = ids[number]
            counters[stream] += 1
            at = out.find(struct.pack("<Q", old), offset + 24, offset + size)
            if at != -1:
                struct.pack_into("<Q", out, at, counters[stream])
        offset += size
    struct.pack_into("<I", out, 52, zlib.crc32(bytes(out[512:free])))
    struct.pack_into("<I", out, 124, zlib.crc32(bytes(out[:120]) + bytes(out[128:512])))
    return bytes(out)


def count_records(path: Path) -> int:
    """Records in an EVTX file, from its chunk headers (first and last record number of each chunk)."""
    records = 0
    with path.open("rb") as source:
        source.seek(HEADER)
        while len(head := source.read(CHUNK)) >= 24 and head[:8] == b"ElfChnk\x00":
            first, last = struct.unpack_from("<QQ", head, 8)
            records += last - first + 1
    return records


def build(chunks_wanted: int, out: Path, mix: str = "all") -> int:
    chunks = sample_chunks(mix)
    header = bytearray((SAMPLES / "evtx-to-mitre-attack" / "ID104-1102-Event_log_cleared.evtx").read_bytes()[:HEADER])
    struct.pack_into("<Q", header, 16, chunks_wanted - 1)
    struct.pack_into("<H", header, 42, chunks_wanted)
    struct.pack_into("<I", header, 124, zlib.crc32(bytes(header[:120])))
    counters: dict[str, int] = defaultdict(int)
    records = 0
    with out.open("wb") as target:
        target.write(header)
        for index in range(chunks_wanted):
            chunk, ids = chunks[index % len(chunks)]
            target.write(renumbered(chunk, ids, counters))
            records += len(ids)
    return records


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4) or (len(sys.argv) == 4 and sys.argv[3] not in MIXES):
        sys.exit(__doc__)
    print(build(int(sys.argv[1]), Path(sys.argv[2]), *sys.argv[3:]))
