"""infra/Dockerfile: its commands run on the real CLI, its build mirrors scripts/bootstrap.sh."""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass

import pytest
from modelyard_registry.bundled import BUNDLED

from .conftest import INFRA, ROOT
from .contract import env_var_error, settings_from, shell_commands, yard_command_error


@dataclass(frozen=True)
class Instruction:
    stage: int
    keyword: str
    args: str


def parse_dockerfile(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped (as BuildKit reads them)."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, args = full.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            stage += 1
        instructions.append(Instruction(stage, keyword, args.strip()))
    assert not pending, "dangling line continuation"
    return instructions


DOCKERFILE = parse_dockerfile((INFRA / "Dockerfile").read_text(encoding="utf-8"))
FINAL_STAGE = max(i.stage for i in DOCKERFILE)


def args_defaults() -> dict[str, str]:
    defaults = {}
    for ins in DOCKERFILE:
        if ins.keyword == "ARG" and "=" in ins.args:
            name, value = ins.args.split("=", 1)
            defaults[name] = shlex.split(value)[0] if value else ""
    return defaults


def env_of(stage: int) -> dict[str, str]:
    env: dict[str, str] = {}
    for ins in DOCKERFILE:
        if ins.keyword == "ENV" and ins.stage == stage:
            for pair in shlex.split(ins.args):
                name, _, value = pair.partition("=")
                env[name] = value
    return env


def exec_form(ins: Instruction) -> list[str]:
    args = ins.args
    if ins.keyword == "HEALTHCHECK":
        args = re.sub(r"^(--\S+\s+)*CMD\s+", "", args)
    value = json.loads(args)
    assert isinstance(value, list), f"{ins.keyword} must use the exec (JSON) form"
    return [str(v) for v in value]


def bootstrap_default(variable: str) -> str:
    text = (ROOT / "scripts" / "bootstrap.sh").read_text(encoding="utf-8")
    match = re.search(r"\$\{" + variable + r':-"?([^"}]*)"?\}', text)
    assert match, f"bootstrap.sh no longer defaults {variable}"
    return match.group(1)


def test_llama_build_mirrors_bootstrap() -> None:
    defaults = args_defaults()
    assert defaults["LLAMA_VERSION"] == bootstrap_default("MODELYARD_LLAMA_VERSION")
    assert defaults["LLAMA_PORTABLE_CPU"] == bootstrap_default("MODELYARD_LLAMA_CMAKE_ARGS")
    build = " ".join(i.args for i in DOCKERFILE if i.keyword == "RUN" and "pip wheel" in i.args)
    assert 'CMAKE_ARGS="$flags"' in build and "llama-cpp-python==${LLAMA_VERSION}" in build
    assert "-DGGML_CUDA=on" in build and '"$VARIANT" = cuda' in build


def test_multi_stage_with_cpu_and_cuda_variants() -> None:
    froms = [i.args for i in DOCKERFILE if i.keyword == "FROM"]
    assert "builder-${VARIANT} AS builder" in froms
    assert "runtime-${VARIANT} AS runtime" in froms
    defaults = args_defaults()
    assert defaults["VARIANT"] == "cpu"
    assert re.match(r"nvidia/cuda:.*-devel-", defaults["CUDA_DEVEL_BASE"])
    assert defaults["CUDA_RUNTIME_BASE"].startswith("nvidia/cuda:")
    final_copies = [i.args for i in DOCKERFILE if i.stage == FINAL_STAGE and i.keyword == "COPY"]
    assert all("--from=builder" in c for c in final_copies), "runtime copies only built artefacts"
    assert not any("pip wheel" in i.args for i in DOCKERFILE if i.stage == FINAL_STAGE)


def test_runs_as_a_non_root_user() -> None:
    users = [i.args for i in DOCKERFILE if i.stage == FINAL_STAGE and i.keyword == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    uid, gid = users[-1].split(":")
    final_runs = [i.args for i in DOCKERFILE if i.stage == FINAL_STAGE and i.keyword == "RUN"]
    # The user and its group exist with exactly those ids, so files chowned to yard:yard belong
    # to the process, and k8s runAsUser/runAsGroup/fsGroup can name the same numbers.
    assert any(f"--uid {uid}" in r and f"--gid {gid}" in r for r in final_runs)
    assert any(f"groupadd --system --gid {gid}" in r for r in final_runs)


def test_bundled_models_are_pulled_at_build_time() -> None:
    names = args_defaults()["BUNDLED_MODELS"].split()
    assert "smollm2-135m" in names
    assert set(names) <= set(BUNDLED)
    loop = next(i.args for i in DOCKERFILE if i.keyword == "RUN" and "$BUNDLED_MODELS" in i.args)
    assert 'yard models pull "$model"' in loop
    for name in names:
        assert yard_command_error(["yard", "models", "pull", name]) is None
    # The embedded catalogue is built where the runtime image keeps it.
    home = env_of(FINAL_STAGE)["MODELYARD_HOME"]
    assert any("/opt/modelyard" in i.args for i in DOCKERFILE if i.stage == FINAL_STAGE)
    assert any(home in i.args and "--from=builder" in i.args
               for i in DOCKERFILE if i.stage == FINAL_STAGE and i.keyword == "COPY")


def test_every_yard_command_in_the_dockerfile_parses() -> None:
    found = 0
    for ins in DOCKERFILE:
        if ins.keyword == "RUN":
            for words in shell_commands(ins.args):
                while words and words[0] in ("do", "then", "else"):
                    words = words[1:]
                if words and words[0] == "yard":
                    argv = [w.replace("$model", "smollm2-135m") for w in words]
                    assert yard_command_error(argv) is None, argv
                    found += 1
        elif ins.keyword in ("CMD", "ENTRYPOINT"):
            argv = exec_form(ins)
            if "yard" in argv:
                argv = argv[argv.index("yard"):]
                assert yard_command_error(argv) is None, argv
                found += 1
    assert found >= 3


def test_default_command_is_the_api_and_the_health_check_hits_it() -> None:
    (cmd,) = [exec_form(i) for i in DOCKERFILE if i.keyword == "CMD"]
    (entrypoint,) = [exec_form(i) for i in DOCKERFILE if i.keyword == "ENTRYPOINT"]
    assert entrypoint[0] == "tini"
    assert cmd[:2] == ["yard", "api"]
    port = cmd[cmd.index("--port") + 1]
    assert cmd[cmd.index("--host") + 1] == "0.0.0.0"
    (health,) = [exec_form(i) for i in DOCKERFILE if i.keyword == "HEALTHCHECK"]
    assert f"http://127.0.0.1:{port}/healthz" in " ".join(health)
    assert [i.args for i in DOCKERFILE if i.keyword == "EXPOSE"] == [port]


@pytest.mark.parametrize("stage", sorted({i.stage for i in DOCKERFILE if i.keyword == "ENV"}))
def test_env_names_are_settings_or_known(stage: int, monkeypatch: pytest.MonkeyPatch) -> None:
    env = env_of(stage)
    for name in env:
        assert env_var_error(name) is None, name
    settings = settings_from(env, monkeypatch)
    if "MODELYARD_HOME" in env:
        assert str(settings.home) == env["MODELYARD_HOME"]


def lock_python() -> str:
    """The Python the hashed locks are resolved for (``scripts/lock.sh --python-version``)."""
    text = (ROOT / "scripts" / "lock.sh").read_text(encoding="utf-8")
    (version,) = set(re.findall(r"--python-version (\S+)", text))
    return version


def stage_named(name: str) -> int:
    (stage,) = {i.stage for i in DOCKERFILE if i.keyword == "FROM" and i.args.endswith(f" {name}")}
    return stage


def runs(stage: int) -> list[str]:
    return [i.args for i in DOCKERFILE if i.stage == stage and i.keyword == "RUN"]


def test_every_variant_runs_the_python_the_lock_is_for() -> None:
    """The lock's pins (and their wheels) hold for one Python; the nvidia/cuda Ubuntu 24.04 bases
    ship 3.12, so the CUDA variant installs the lock's Python, and the build stops on any other."""
    python = lock_python()
    defaults = args_defaults()
    assert defaults["PYTHON_VERSION"] == python
    assert defaults["CPU_BASE"].startswith(f"python:{python}-")
    assert not any("python3 -m venv" in r or "python3-venv" in r for r in
                   (i.args for i in DOCKERFILE if i.keyword == "RUN"))
    check = "sys.version_info"
    for stage in (stage_named("builder"), stage_named("runtime")):
        assert any(i.keyword == "ARG" and i.args == "PYTHON_VERSION"
                   for i in DOCKERFILE if i.stage == stage)
        # A base without the lock's Python gets it (the same package in both stages).
        assert any('command -v "python${PYTHON_VERSION}"' in r
                   and 'install -y --no-install-recommends "python${PYTHON_VERSION}"' in r
                   for r in runs(stage)), stage
        assert any(check in r and "'${PYTHON_VERSION}'" in r for r in runs(stage)), stage
    build = runs(stage_named("builder"))
    venv = next(n for n, r in enumerate(build) if "-m venv /opt/modelyard" in r)
    assert build[venv].startswith('"python${PYTHON_VERSION}" -m venv')
    verified = next(n for n, r in enumerate(build) if check in r)
    locked = next(n for n, r in enumerate(build) if "--require-hashes" in r)
    assert venv < verified < locked, "the venv's Python is checked before the lock installs"
