#!/usr/bin/env python3
"""Compare the distributions installed in a Python environment with a lock file.

    scripts/check_lock.py [--python VENV_PYTHON] LOCKFILE [--list-extra]

Without --python it inspects the interpreter running it (e.g. `.venv/bin/python
scripts/check_lock.py requirements/dev.txt`). Names are compared canonicalised (PEP 503),
versions as PEP 440 versions, local labels included (`torch==2.13.0+cpu` is not
`2.13.0`). The project itself (the name in pyproject.toml) is left out, being installed
editable from the working tree. Prints every difference, both ways (locked but missing,
installed but not locked, other version), and exits 1 when there is one.

--list-extra prints only the names of installed distributions the lock does not have,
one a line, and exits 0 (scripts/install.sh uninstalls them).

Standard library only, so that it also works on a venv whose `packaging` is wrong.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs inside the inspected interpreter: {name: version} of every installed distribution.
_INSPECT = r"""
import importlib.metadata as m, json, sys
out = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if name:
        out.setdefault(name, d.version)
json.dump(out, sys.stdout)
"""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*===?\s*([^\s;#\\]+)")


def canonical_name(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def normalise_version(version: str) -> object:
    try:
        from packaging.version import InvalidVersion, Version
    except ImportError:  # compare as text
        return version.strip().lower()
    try:
        return Version(version)
    except InvalidVersion:
        return version.strip().lower()


def read_lock(path: Path) -> dict[str, str]:
    """{canonical name: version} of a pip-compile output (`name==version` lines)."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(path.read_text().splitlines(), 1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):  # -c / -r / --find-links ...: not a pin
            continue
        match = _PIN.match(line)
        if not match:
            raise SystemExit(f"{path}:{number}: not a `name==version` pin: {raw!r}")
        pins[canonical_name(match.group(1))] = match.group(2)
    return pins


def project_name() -> str | None:
    pyproject = ROOT / "pyproject.toml"
    if not pyproject.exists():
        return None
    import tomllib

    return tomllib.loads(pyproject.read_text())["project"]["name"]


def installed(python: str) -> dict[str, str]:
    """{canonical name: version} installed for `python` (run isolated: no PYTHONPATH, no user site)."""
    result = subprocess.run([python, "-I", "-c", _INSPECT], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise SystemExit(f"cannot inspect {python}: {result.stderr.strip()}")
    return {canonical_name(name): version for name, version in json.loads(result.stdout).items()}


def differences(locked: dict[str, str], present: dict[str, str]) -> tuple[list[str], list[str], list[str]]:
    missing = sorted(f"{name}=={locked[name]}" for name in locked.keys() - present.keys())
    extra = sorted(f"{name}=={present[name]}" for name in present.keys() - locked.keys())
    other = sorted(
        f"{name}: locked {locked[name]}, installed {present[name]}"
        for name in locked.keys() & present.keys()
        if normalise_version(locked[name]) != normalise_version(present[name])
    )
    return missing, extra, other


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("lockfile", type=Path)
    parser.add_argument("--python", help="interpreter of the environment to inspect (default: this one)")
    parser.add_argument("--list-extra", action="store_true", help="print the unlocked distributions and exit 0")
    parser.add_argument("--exclude", action="append", default=[], help="another distribution name to ignore")
    args = parser.parse_args(argv)

    locked = read_lock(args.lockfile)
    where = args.python or sys.executable
    present = installed(where)
    ignored = {canonical_name(name) for name in args.exclude}
    own = project_name()
    if own:
        ignored.add(canonical_name(own))
    for name in ignored:
        locked.pop(name, None)
        present.pop(name, None)

    missing, extra, other = differences(locked, present)
    if args.list_extra:
        for item in extra:
            print(item.split("==", 1)[0])
        return 0
    if not (missing or extra or other):
        print(f"check-lock: {where} matches {args.lockfile} ({len(locked)} distributions)")
        return 0
    print(f"check-lock: {where} differs from {args.lockfile}:")
    for label, items in (
        ("missing (locked, not installed)", missing),
        ("extra (installed, not locked)", extra),
        ("other version", other),
    ):
        if items:
            print(f"  {label}:")
            for item in items:
                print(f"    {item}")
    print("  fix: `make -B install` reinstalls exactly the lock (and removes what it does not pin);")
    print("       `make lock` first if pyproject.toml changed")
    return 1


if __name__ == "__main__":
    sys.exit(main())
