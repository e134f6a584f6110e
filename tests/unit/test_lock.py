"""The lock files agree with pyproject.toml and with each other; scripts/check_lock.py finds drift.

No network: lock files and the running environment only.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
REQUIREMENTS = ROOT / "requirements"
CHECK_LOCK = ROOT / "scripts" / "check_lock.py"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = canonicalize_name(PYPROJECT["project"]["name"])

# Lock file -> the extras of pyproject.toml it is compiled with (Makefile, target lock).
LOCKS = {
    "dev.txt": ("cpu", "dev", "langchain", "lm"),
    "runtime.txt": ("cpu",),
    "runtime-lm.txt": ("cpu", "lm"),
}


def read_lock(path: Path) -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, version = line.partition("==")
        assert sep and " " not in version, f"{path.name}: not a `name==version` pin: {raw!r}"
        assert canonicalize_name(name) not in pins, f"{path.name}: {name} pinned twice"
        pins[canonicalize_name(name)] = Version(version)
    return pins


def requirements_of(extras: tuple[str, ...]) -> list[Requirement]:
    project = PYPROJECT["project"]
    declared = list(project["dependencies"])
    for extra in extras:
        declared += project["optional-dependencies"][extra]
    return [Requirement(text) for text in declared]


@pytest.mark.parametrize("lock_name", sorted(LOCKS))
def test_every_pyproject_requirement_is_pinned_inside_its_range(lock_name: str) -> None:
    pins = read_lock(REQUIREMENTS / lock_name)
    problems = []
    for requirement in requirements_of(LOCKS[lock_name]):
        if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(requirement.name)
        if name not in pins:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(pins[name], prereleases=True):
            problems.append(f"{requirement}: pinned {pins[name]}")
    assert not problems, f"{lock_name} is out of date with pyproject.toml (run `make lock`): {problems}"


def test_runtime_locks_agree_with_the_dev_lock() -> None:
    dev = read_lock(REQUIREMENTS / "dev.txt")
    runtime = read_lock(REQUIREMENTS / "runtime.txt")
    runtime_lm = read_lock(REQUIREMENTS / "runtime-lm.txt")
    assert runtime.keys() <= runtime_lm.keys() <= dev.keys()
    for name, lock in (("runtime.txt", runtime), ("runtime-lm.txt", runtime_lm)):
        differ = {pkg: (str(version), str(dev[pkg])) for pkg, version in lock.items() if dev[pkg] != version}
        assert not differ, f"{name} and dev.txt pin other versions: {differ}"
    assert "llama-cpp-python" in runtime_lm and "llama-cpp-python" not in runtime


def test_locks_pin_the_cpu_torch_pip_and_setuptools() -> None:
    dev = read_lock(REQUIREMENTS / "dev.txt")
    # The CUDA build (PyPI's plain torch) is GBs; the lock must hold the +cpu one.
    assert dev["torch"].local == "cpu"
    # --allow-unsafe: a venv starts with pip and setuptools, so the lock decides their versions too.
    assert {"pip", "setuptools"} <= dev.keys()
    assert PROJECT not in dev


def test_lock_headers_name_make_lock() -> None:
    for name in LOCKS:
        assert "#    make lock\n" in (REQUIREMENTS / name).read_text(), name


def run_check_lock(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(CHECK_LOCK), *args], capture_output=True, text=True, timeout=60)


def test_check_lock_reports_missing_extra_and_other_versions(tmp_path: Path) -> None:
    lock = tmp_path / "fake.txt"
    # pytest is installed (it runs this), at another version; the fake one is not installed;
    # everything else installed is then extra.
    lock.write_text("# a fabricated lock\npytest==0.0.1\n    # via nothing\ndefinitely-not-installed-xyz==1.0\n")
    result = run_check_lock(str(lock))
    assert result.returncode == 1, result.stdout + result.stderr
    out = result.stdout
    assert "definitely-not-installed-xyz==1.0" in out.split("extra")[0]  # under "missing"
    assert "pytest: locked 0.0.1, installed" in out
    assert "packaging==" in out  # installed, not in the fabricated lock: extra
    listed = run_check_lock("--list-extra", str(lock))
    assert listed.returncode == 0
    assert "packaging" in listed.stdout.split()
    assert PROJECT not in listed.stdout.split()  # the project itself is never a difference


def test_check_lock_passes_on_an_environment_matching_its_lock(tmp_path: Path) -> None:
    # A lock written from what is installed matches it.
    from importlib.metadata import distributions

    pins = {canonicalize_name(d.metadata["Name"]): d.version for d in distributions() if d.metadata["Name"]}
    pins.pop(PROJECT, None)
    lock = tmp_path / "lock.txt"
    lock.write_text("".join(f"{name}=={version}\n" for name, version in sorted(pins.items())))
    result = run_check_lock(str(lock))
    assert result.returncode == 0, result.stdout


def test_this_venv_matches_the_lock_it_was_installed_from() -> None:
    stamp = Path(sys.prefix) / ".installed-stamp"
    if not stamp.exists() or not stamp.read_text().strip():
        pytest.skip("not a venv made by `make install`")
    lock = ROOT / stamp.read_text().splitlines()[0]  # the lock it installed (Makefile)
    result = run_check_lock(str(lock))
    assert result.returncode == 0, result.stdout
