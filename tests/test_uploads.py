"""Every upload path streams: a 16 MiB image is a ComposedBody, never bytes.

Memory itself is measured by benchmarks/upload_memory.py, not asserted here.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from golden import golden_files, load_golden

import wamsg
from wamsg import ComposedBody, MediaChunks

LIMIT = 16 * 1024 * 1024
# Wawp takes images by URL only (providers.md §1.5); every other gateway uploads.
UPLOADERS = [name for name in wamsg.available() if name != "wawp"]


def adapter_for(provider: str) -> wamsg.Adapter:
    settings = load_golden(golden_files(provider, "request")[0])["settings"]
    return wamsg.create_adapter(provider, **settings)


def test_every_provider_but_wawp_uploads_bytes() -> None:
    capable = {n for n in wamsg.available() if adapter_for(n).capabilities.media_bytes}
    assert capable == set(UPLOADERS)


@pytest.mark.parametrize("provider", UPLOADERS)
def test_a_16_mib_image_is_streamed(
    provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    adapter = adapter_for(provider)
    path = tmp_path / "big.jpg"
    with path.open("wb") as f:  # sparse: 16 MiB on paper, no disk or memory used
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(adapter.capabilities.max_media_bytes or LIMIT)
    media = wamsg.Media(path=str(path), head=b"\xff\xd8\xff\xe0")
    message = wamsg.Image(to="+5511999990000", image=media, caption="big")

    def no_reading(*args: object, **kwargs: object) -> None:
        raise AssertionError("encode must not read the file")

    monkeypatch.setattr("builtins.open", no_reading)
    request = adapter.encode(message)
    monkeypatch.undo()
    body = request.body
    assert isinstance(body, ComposedBody), "an upload body must be a stream, not bytes"
    media_parts = [p for p in body.parts if isinstance(p, MediaChunks)]
    assert len(media_parts) == 1
    assert body.length is not None
    assert media.size is not None
    assert body.length >= media.size
    assert sum(len(p) for p in body.parts if isinstance(p, bytes)) < 4096
    assert request.kind == "media"


@pytest.mark.parametrize("provider", UPLOADERS)
def test_one_byte_over_the_limit_is_refused_before_sending(provider: str, tmp_path: Path) -> None:
    adapter = adapter_for(provider)
    limit = adapter.capabilities.max_media_bytes
    assert limit is not None, f"{provider} must declare its media size limit"
    path = tmp_path / "big.jpg"
    with path.open("wb") as f:
        f.write(b"\xff\xd8\xff\xe0")
        f.truncate(limit + 1)
    message = wamsg.Image(to="+5511999990000", image=wamsg.Media(path=str(path)))
    with pytest.raises(wamsg.InvalidMessage, match="bytes"):
        adapter.encode(message)
