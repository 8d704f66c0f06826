"""`yard models ...` and `yard generate` as an operator uses them, bad input included."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from modelyard_registry.cli.app import app
from modelyard_registry.cli.common import out as cli_out
from typer.testing import CliRunner

from ..conftest import free_port

runner = CliRunner()
PUBLIC_KEYS = {"name", "backend", "context_length", "quantization", "parameters", "capabilities",
               "price_in", "price_out", "enabled"}


def yard(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def catalogue_json() -> list[dict]:
    code, out, _ = yard("models", "list", "--json")
    assert code == 0, out
    return json.loads(out)


@pytest.fixture
def local_model(yard_home: Path, smollm2_path: Path) -> str:
    code, _out, err = yard("models", "add", "smol", "--gguf", str(smollm2_path))
    assert code == 0, err
    return "smol"


def test_add_gguf_reads_facts_from_the_header(local_model: str, smollm2_path: Path) -> None:
    [entry] = catalogue_json()
    assert entry.keys() >= PUBLIC_KEYS
    assert entry["name"] == "smol"
    assert entry["backend"] == "llama_cpp"
    assert entry["family"] == "llama"
    assert entry["quantization"] == "Q4_1"
    assert entry["context_length"] == 8192
    assert 130_000_000 < entry["parameters"] < 140_000_000
    assert set(entry["capabilities"]) == {"chat", "completion", "json_schema"}
    assert entry["size_bytes"] == smollm2_path.stat().st_size
    assert len(entry["sha256"]) == 64
    code, out, _ = yard("models", "show", "smol", "--json")
    assert code == 0 and json.loads(out)["sha256"] == entry["sha256"]


def test_enable_disable_and_remove(local_model: str) -> None:
    assert yard("models", "disable", "smol")[0] == 0
    assert catalogue_json()[0]["enabled"] is False
    assert yard("models", "enable", "smol")[0] == 0
    assert catalogue_json()[0]["enabled"] is True
    assert yard("models", "rm", "smol")[0] == 0
    assert catalogue_json() == []


def _bad(args: list[str], message: str) -> None:
    before = catalogue_json()
    code, _, err = yard(*args)
    assert code == 2, err
    assert message in err
    assert len(err.strip().splitlines()) == 1, err  # one line, no traceback
    assert catalogue_json() == before


def test_bad_local_files_are_refused(local_model: str, tmp_path: Path, smollm2_path: Path) -> None:
    _bad(["models", "add", "x", "--gguf", str(tmp_path / "nope.gguf")], "no such file")
    _bad(["models", "add", "x", "--gguf", str(tmp_path)], "is a directory")
    text = tmp_path / "notes.gguf"
    text.write_text("hello, I am not a model")
    _bad(["models", "add", "x", "--gguf", str(text)], "not a GGUF file")
    cut = tmp_path / "cut.gguf"
    with smollm2_path.open("rb") as src, cut.open("wb") as dst:
        dst.write(src.read(5 * 2**20))
    _bad(["models", "add", "x", "--gguf", str(cut)], "truncated")


def test_bad_names_and_urls_are_refused(local_model: str, smollm2_path: Path) -> None:
    _bad(["models", "add", "smol", "--gguf", str(smollm2_path)], "already exists")
    _bad(["models", "add", "Bad Name!", "--gguf", str(smollm2_path)], "invalid model name")
    _bad(["models", "add", "r", "--endpoint", "ftp://host/v1", "--served-name", "m"],
         "http(s) URL")
    _bad(["models", "add", "r", "--endpoint", "not a url", "--served-name", "m"], "http(s) URL")
    for command in (["show", "ghost"], ["rm", "ghost"], ["enable", "ghost"], ["disable", "ghost"]):
        _bad(["models", *command], "unknown model 'ghost'")
    _bad(["generate", "ghost", "hi"], "unknown model 'ghost'")
    _bad(["models", "pull", "llama-70b"], "no bundled model")


def test_remote_endpoint_that_does_not_answer(yard_home: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}/v1"
    _bad(["models", "add", "r", "--endpoint", url, "--served-name", "m"], "endpoint check failed")
    code, _, err = yard("models", "add", "r", "--endpoint", url, "--served-name", "m", "--no-check")
    assert code == 0, err
    [entry] = catalogue_json()
    assert entry["health"] == "unknown" and entry["base_url"] == url
    code, out, _ = yard("models", "check", "--json")
    assert code == 0
    assert json.loads(out)["r"][0] is False
    assert catalogue_json()[0]["health"] == "unhealthy"


def test_remote_endpoint_registers_after_check(yard_home: Path, openai_server: str) -> None:
    _bad(["models", "add", "r", "--endpoint", openai_server, "--served-name", "not-served"],
         "does not serve 'not-served'")
    code, _, err = yard("models", "add", "r", "--endpoint", openai_server, "--served-name",
                        "smollm2", "--price-in", "0.2", "--price-out", "0.6",
                        "--response-format", "json_object",
                        "--api-key-env", "MODELYARD_SECRET_R_KEY")
    assert code == 0, err
    [entry] = catalogue_json()
    assert entry["backend"] == "openai_compatible"
    assert entry["health"] == "healthy"
    assert (entry["price_in"], entry["price_out"]) == (0.2, 0.6)
    assert entry["api_key_env"] == "MODELYARD_SECRET_R_KEY"
    code, out, err = yard("generate", "r", "Say hi.", "--max-tokens", "8", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["model"] == "r" and result["completion_tokens"] > 0


def test_pull_is_idempotent_and_measures_the_model(
    yard_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = yard("models", "pull", "smollm2-135m", "--eval-limit", "2")
    assert code == 0, err
    flat = " ".join(out.split())  # rich wraps long lines at the terminal width
    assert "registered" in flat and "licence: Apache-2.0" in flat
    assert "quick evaluation (2 items per kind)" in flat
    cached = yard_home / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert cached.exists()
    code, out, _ = yard("models", "pull", "smollm2-135m")
    flat = " ".join(out.split())
    assert code == 0 and "already registered" in flat and "already has measured scores" in flat
    [entry] = catalogue_json()
    assert entry["sha256"] == "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
    assert entry["gguf_path"] == str(cached)
    # The first job is routed on measured quality and priced on measured speed.
    assert entry["evaluation"] == "quick"
    assert set(entry["scores"]) == {"classify", "extract", "summarize", "qa"}
    assert entry["decode_tokens_per_s"] > 0 and entry["prompt_tokens_per_s"] > 0
    assert entry["price_out_derived"] == pytest.approx(
        0.10 / 3600 * 1_000_000 / entry["decode_tokens_per_s"])
    code, out, err = yard("route", "explain", "--kind", "classify", "--json", "Refund my order")
    assert code == 0, err
    decision = json.loads(out)
    assert decision["chosen"] == "smollm2-135m" and not decision["best_effort"]
    code, out, _ = yard("models", "list")
    assert code == 0 and "smollm2-135m" in out
    # Measured quality per kind and speed read whole in a narrow (80-column) terminal.
    assert f"classify {entry['scores']['classify']['value']:.2f}" in out
    assert (f"{entry['decode_tokens_per_s']:,.0f} / {entry['prompt_tokens_per_s']:,.0f}"
            in out)
    monkeypatch.setattr(cli_out, "width", 200)  # --wide is for a wide terminal
    code, wide, _ = yard("models", "list", "--wide")
    assert code == 0 and "quick" in wide and "json_schema" in wide


def test_pull_without_eval_lists_the_model_as_unmeasured(yard_home: Path) -> None:
    code, _out, err = yard("models", "pull", "smollm2-135m", "--no-eval")
    assert code == 0, err
    [entry] = catalogue_json()
    assert entry["evaluation"] == "unmeasured" and entry["decode_tokens_per_s"] is None
    assert "yard models eval NAME" in " ".join(yard("models", "list")[1].split())


def test_generate_json_with_schema(local_model: str, tmp_path: Path) -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"},
              "confident": {"type": "boolean"}}, "required": ["answer", "confident"]}
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(schema))
    code, out, err = yard("generate", "smol", "What is 2+2?", "--json-schema", str(schema_file),
                          "--max-tokens", "60", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert {"text", "model", "prompt_tokens", "completion_tokens", "ttft_s",
            "tokens_per_s"} <= result.keys()
    jsonschema.validate(json.loads(result["text"]), schema)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    _bad(["generate", "smol", "hi", "--json-schema", str(bad)], "not valid JSON")
    too_long = tmp_path / "too_long.json"
    too_long.write_text(json.dumps({"type": "object", "properties": {
        "a": {"type": "string", "maxLength": 5000}}}))
    _bad(["generate", "smol", "hi", "--json-schema", str(too_long)], "$.properties.a.maxLength")


def test_generate_prints_text_then_figures(local_model: str) -> None:
    code, out, err = yard("generate", "smol", "Say hello.", "--max-tokens", "10", "--stream")
    assert code == 0
    assert out.strip()
    assert "tokens in" in err and "tokens/s" in err and "TTFT" in err
