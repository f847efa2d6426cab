"""atheris (coverage-guided) fuzz target: the framing decoder and the parsers on arbitrary bytes.

Run with `make fuzz` (installs atheris into .venv; FUZZ_SECONDS bounds the run, default 60).
Properties checked on every input, split at fuzzer-chosen points as a TCP stream would be:

* the decoder never raises, and feeding the same bytes in any split gives the same frames
  and errors as feeding them at once;
* no frame is longer than the limit, and every frame parses into exactly one event.

The hypothesis tests in tests/collector/test_framing.py and tests/parsers/test_properties.py
check the same properties within `make test`; this target explores much further.
"""

from __future__ import annotations

import sys

import atheris

with atheris.instrument_imports():
    from collector.framing import Frame, FrameDecoder, decode_text
    from parsers import LineParser

LIMIT = 1024


def _decode(chunks: list[bytes]) -> list[object]:
    decoder = FrameDecoder(LIMIT)
    out: list[object] = []
    for chunk in chunks:
        if chunk:  # b"" is EOF to the decoder
            out.extend(decoder.feed(chunk))
    out.extend(decoder.feed(b""))
    return [(i.data, i.framing) if isinstance(i, Frame) else i.reason for i in out]


def test_one_input(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    cuts = sorted(fdp.ConsumeIntListInRange(fdp.ConsumeIntInRange(0, 8), 0, 4096))
    payload = fdp.ConsumeBytes(fdp.remaining_bytes())
    chunks, start = [], 0
    for cut in cuts:
        chunks.append(payload[start:max(start, cut)])
        start = max(start, cut)
    chunks.append(payload[start:])
    whole = _decode([payload])
    if _decode(chunks) != whole:
        raise AssertionError("splitting the stream changed the frames")
    parser = LineParser()
    for item in whole:
        if isinstance(item, tuple):
            frame, _framing = item
            if len(frame) > LIMIT:
                raise AssertionError("a frame over the limit")
            text, _invalid = decode_text(frame)
            if parser.parse(text) is None:
                raise AssertionError("no event for a frame")


def main() -> None:
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
