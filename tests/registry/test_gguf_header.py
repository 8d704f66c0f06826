"""The lean header reader states the same facts as the reference reader (``gguf.GGUFReader``)."""

from __future__ import annotations

from pathlib import Path

from gguf import GGUFReader
from modelyard_registry.gguf_info import read_gguf


def test_facts_match_the_reference_reader(smollm2_path: Path) -> None:
    info = read_gguf(smollm2_path)
    reference = GGUFReader(str(smollm2_path), "r")

    def field(key: str) -> object:
        return reference.fields[key].contents()

    assert info.architecture == field("general.architecture") == "llama"
    assert info.name == field("general.name")
    assert info.context_length == field("llama.context_length")
    assert info.n_layers == field("llama.block_count")
    assert info.parameters == sum(int(t.n_elements) for t in reference.tensors)
    assert info.has_chat_template and not info.template_tools
    end = max(t.data_offset + int(t.n_bytes) for t in reference.tensors)
    assert end <= info.size_bytes == smollm2_path.stat().st_size
