"""deploy/Dockerfile and scripts/build-image.sh (the same image without Docker) stay in step.

Both install the project from pyproject.toml into a venv at /opt/jangar and give the image the same
entrypoint, command, user, home, workdir, environment, ports and labels. The Dockerfile is parsed; the
script states its config with `--print-config` (which needs none of the build tools). The fake agent of the
test-agent image is run with the host's shell for its documented behaviours.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
SCRIPT = ROOT / "scripts" / "build-image.sh"

# The python:3.11-slim base image sets LANG=C.UTF-8; the script, with no such base, sets it itself.
FROM_BASE_IMAGE = {"LANG": "C.UTF-8"}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    assert not pending, "a continued line at the end of deploy/Dockerfile"
    return out


def final_stage() -> list[tuple[str, str]]:
    ins = dockerfile_instructions()
    starts = [i for i, (word, _) in enumerate(ins) if word == "FROM"]
    return ins[starts[-1] :]


def build_stage() -> list[tuple[str, str]]:
    ins = dockerfile_instructions()
    starts = [i for i, (word, _) in enumerate(ins) if word == "FROM"]
    assert len(starts) == 2, "deploy/Dockerfile: a build stage and a final stage"
    return ins[starts[0] : starts[1]]


def key_values(args: str) -> dict[str, str]:
    """LABEL/ENV `k=v k2="v 2"` pairs."""
    pairs = {}
    for token in shlex.split(args):
        key, sep, value = token.partition("=")
        assert sep, f"not key=value: {token!r}"
        pairs[key] = value
    return pairs


def merged(stage: list[tuple[str, str]], word: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for w, args in stage:
        if w == word:
            out.update(key_values(args))
    return out


def last(stage: list[tuple[str, str]], word: str) -> str:
    values = [args for w, args in stage if w == word]
    assert values, f"deploy/Dockerfile's final stage has no {word}"
    return values[-1]


def script_config() -> dict[str, list[str]]:
    proc = subprocess.run(
        ["bash", str(SCRIPT), "--print-config"], capture_output=True, text=True, check=False, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    config: dict[str, list[str]] = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        config.setdefault(key, []).append(value)
    return config


@pytest.fixture(scope="module")
def config() -> dict[str, list[str]]:
    return script_config()


def test_both_install_the_project_from_pyproject_into_the_same_venv(config: dict[str, list[str]]) -> None:
    build = build_stage()
    copied: set[str] = set()
    for word, args in build:
        if word == "COPY":
            copied.update(src.rstrip("*") for src in shlex.split(args)[:-1])
    runs = " ".join(args for word, args in build if word == "RUN")
    assert "python -m venv /opt/jangar" in runs
    assert re.search(r"/opt/jangar/bin/pip install \.(\s|$)", runs), runs
    assert "/opt/jangar/bin/pip install --upgrade pip" in runs
    assert ("COPY", "--from=build /opt/jangar /opt/jangar") in final_stage()

    assert config["venv"] == ["/opt/jangar"]
    # The same files go into the build: pyproject.toml (the dependencies), README.md (its readme), jangar/.
    assert set(config["source"]) == copied == {"pyproject.toml", "README.md", "jangar"}
    text = SCRIPT.read_text()
    # A wheel built from those sources (pyproject.toml's build backend), installed with its dependencies.
    assert '"$J_VENV/bin/pip" install -q --upgrade pip' in text
    assert '"$J_VENV/bin/pip" wheel -q --no-deps -w /tmp/dist /tmp/src' in text
    assert "$J_VENV/bin/pip install -q /tmp/dist/jangar-*.whl" in text


def test_same_entrypoint_and_command(config: dict[str, list[str]]) -> None:
    stage = final_stage()
    assert json.loads(last(stage, "ENTRYPOINT")) == config["entrypoint"][0].split()
    assert json.loads(last(stage, "CMD")) == config["cmd"][0].split()


def test_same_user_home_and_workdir(config: dict[str, list[str]]) -> None:
    stage = final_stage()
    assert last(stage, "USER") == config["user"][0]
    assert last(stage, "WORKDIR") == config["workdir"][0]
    runs = " ".join(args for word, args in stage if word == "RUN")
    group = re.search(r"groupadd --gid (\d+) (\S+)", runs)
    user = re.search(
        r"useradd --uid (\d+) --gid (\d+) --home-dir (\S+) --create-home --shell (\S+) (\S+)", runs
    )
    assert group and user, runs
    name, uid, gid, home, shell = config["account"][0].split(":")
    assert (group[1], group[2]) == (gid, name)
    assert (user[1], user[2], user[3], user[4], user[5]) == (uid, gid, home, shell, name)
    assert config["user"][0] == f"{uid}:{gid}"


def test_same_environment(config: dict[str, list[str]]) -> None:
    docker_env = merged(final_stage(), "ENV")
    script_env = dict(line.partition("=")[::2] for line in config["env"])
    assert set(script_env) - set(docker_env) == set(FROM_BASE_IMAGE)
    assert set(docker_env) <= set(script_env)
    for key, value in FROM_BASE_IMAGE.items():
        assert script_env[key] == value
    # PATH: the venv first, then the base image's PATH.
    assert docker_env["PATH"] == "/opt/jangar/bin:$PATH"
    assert script_env["PATH"].startswith("/opt/jangar/bin:")
    assert "/usr/bin" in script_env["PATH"].split(":")
    for key, value in docker_env.items():
        if "$" not in value:
            assert script_env[key] == value, key
    # Build arguments in the Dockerfile; the project version and the content hash in the script.
    assert docker_env["JANGAR_VERSION"] == "${JANGAR_VERSION}"
    assert docker_env["JANGAR_BUILD_SHA"] == "${JANGAR_COMMIT}"
    version = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M)
    assert version and script_env["JANGAR_VERSION"] == version[1]
    assert re.fullmatch(r"[0-9a-f]{12}", script_env["JANGAR_BUILD_SHA"])


def test_same_ports(config: dict[str, list[str]]) -> None:
    assert last(final_stage(), "EXPOSE").split() == config["port"]


def test_same_labels(config: dict[str, list[str]]) -> None:
    docker_labels = merged(final_stage(), "LABEL")
    script_labels = dict(line.partition("=")[::2] for line in config["label"])
    assert set(script_labels) == set(docker_labels)
    for key, value in docker_labels.items():
        if "$" not in value:
            assert script_labels[key] == value, key
    env = dict(line.partition("=")[::2] for line in config["env"])
    assert script_labels["org.opencontainers.image.version"] == env["JANGAR_VERSION"]
    assert script_labels["org.opencontainers.image.revision"] == env["JANGAR_BUILD_SHA"]


def test_the_tag_is_a_content_hash_of_the_inputs(tmp_path: Path) -> None:
    """An unchanged tree gives the same tag (the cached archive is reused); a changed source a new one."""
    copy = tmp_path / "repo"
    (copy / "scripts").mkdir(parents=True)
    shutil.copy2(SCRIPT, copy / "scripts" / SCRIPT.name)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, copy / name)
    (copy / "jangar").mkdir()
    (copy / "jangar" / "__init__.py").write_text("")

    def ref(*extra: str) -> str:
        proc = subprocess.run(
            ["bash", str(copy / "scripts" / SCRIPT.name), "--no-build", *extra],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
            env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JANGAR_IMAGE_CACHE": str(tmp_path / "c")},
        )
        return proc.stdout.strip()

    first = ref()
    assert re.fullmatch(r"local\.jangar\.dev/jangar:[0-9a-f]{12}", first)
    assert ref() == first
    assert ref("--print-path") == f"{tmp_path}/c/jangar-{first.rsplit(':', 1)[1]}.oci.tar"
    (copy / "jangar" / "__pycache__").mkdir()
    (copy / "jangar" / "__pycache__" / "x.cpython-311.pyc").write_bytes(b"ignored")
    assert ref() == first
    (copy / "jangar" / "new.py").write_text("x = 1\n")
    assert ref() != first
    assert not (tmp_path / "c").exists() or not list((tmp_path / "c").glob("*.tar"))


# --- the test agent ----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fake_agent(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    text = SCRIPT.read_text()
    body = re.search(r"^fake_agent\(\) \{\n  cat <<'SH'\n(.*?)^SH$", text, re.M | re.S)
    assert body, "fake_agent's heredoc in scripts/build-image.sh"
    path = tmp_path_factory.mktemp("agent") / "fake-agent"
    path.write_text(body[1])
    busybox = shutil.which("busybox")
    # The image runs it with busybox's sh; any POSIX sh will do here.
    return [busybox, "sh", str(path)] if busybox else ["/bin/sh", str(path)]


def run(cmd: list[str], *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*cmd, *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
        env={"PATH": "/usr/bin:/bin", **env},
    )


def test_fake_agent_modes(fake_agent: list[str], tmp_path: Path) -> None:
    ok = run(fake_agent)
    assert (ok.returncode, ok.stdout) == (0, "fake-agent: succeed\n")
    assert run(fake_agent, "succeed", "hello", "there").stdout == "fake-agent: succeed\nhello there\n"
    failed = run(fake_agent, "fail", "7")
    assert (failed.returncode, failed.stdout, failed.stderr) == (7, "", "fake-agent: fail 7\n")
    assert run(fake_agent, FAKE_AGENT_MODE="fail").returncode == 1
    env = run(fake_agent, "env", SOME_VAR="some value")
    assert env.returncode == 0 and "SOME_VAR=some value\n" in env.stdout
    (tmp_path / "mounted").write_text("from a mount\n")
    assert run(fake_agent, "cat", str(tmp_path / "mounted")).stdout == "from a mount\n"
    assert run(fake_agent, "cat", str(tmp_path / "absent")).returncode != 0
    wrote = run(fake_agent, "write", str(tmp_path / "out"), "text")
    assert wrote.returncode == 0 and (tmp_path / "out").read_text() == "text\n"
    assert run(fake_agent, "write", str(tmp_path / "no" / "dir"), "x").returncode != 0
    slept = run(fake_agent, "sleep", "0")
    assert (slept.returncode, slept.stdout) == (0, "fake-agent: sleep 0\nfake-agent: slept 0\n")
    survived = run(fake_agent, "oom", "1")
    assert (survived.returncode, survived.stdout) == (0, "fake-agent: oom 1\nfake-agent: survived 1\n")
    unknown = run(fake_agent, "dance")
    assert unknown.returncode == 64 and "unknown mode 'dance'" in unknown.stderr


def test_fake_agent_sleep_ends_on_sigterm(fake_agent: list[str]) -> None:
    proc = subprocess.Popen(
        [*fake_agent, "sleep", "60"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "fake-agent: sleep 60\n"
        started = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=10)
        assert time.monotonic() - started < 5
        assert (proc.returncode, err) == (143, "fake-agent: terminated\n")
    finally:
        proc.kill()
        proc.wait()
