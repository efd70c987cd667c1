"""The dependency floors and the deployment lock file (issue 12, item 27)."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
LOCK = ROOT / "requirements.lock"
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s\\;]+)")


def runtime() -> list[Requirement]:
    return [Requirement(r) for r in PYPROJECT["project"]["dependencies"]]


def pins() -> dict[str, tuple[Version, int]]:
    """Each pinned package of the lock: its version and how many hashes it carries."""
    found: dict[str, tuple[Version, int]] = {}
    current = ""
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        m = _PIN.match(line)
        if m:
            current = canonicalize_name(m.group(1))
            assert current not in found, f"{current} is pinned twice"
            found[current] = (Version(m.group(2)), 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            version, hashes = found[current]
            found[current] = (version, hashes + 1)
    return found


def test_the_lock_pins_every_runtime_dependency_within_pyproject_and_with_hashes() -> None:
    locked = pins()
    for req in runtime():
        name = canonicalize_name(req.name)
        assert name in locked, f"{req.name} is a dependency but not in requirements.lock"
        version, _ = locked[name]
        assert req.specifier.contains(version, prereleases=True), f"{name}=={version} vs {req}"
    assert all(hashes > 0 for _, hashes in locked.values()), "every pin needs --hash lines"
    assert not any(canonicalize_name(n) in locked for n in ("pytest", "ruff", "mypy", "respx"))


def test_the_lock_pins_releases_without_the_known_cves() -> None:
    locked = pins()
    floors = {
        "jinja2": "3.1.6",  # CVE-2024-56326, CVE-2025-27516: sandbox escapes
        "cryptography": "50.0.0",  # CVE-2026-69247 and earlier
        "python-dotenv": "1.2.2",  # CVE-2026-28684
        "h11": "0.16.0",  # CVE-2025-43859, under httpx
        "lxml": "6.1.0",  # CVE-2026-41066, under python-docx
    }
    for name, floor in floors.items():
        assert locked[name][0] >= Version(floor), name


@pytest.mark.parametrize(
    ("name", "vulnerable"),
    [
        ("jinja2", "3.1.5"),
        ("cryptography", "49.0.0"),
        ("python-dotenv", "1.2.1"),
    ],
)
def test_pyproject_floors_exclude_vulnerable_releases(name: str, vulnerable: str) -> None:
    req = next(r for r in runtime() if canonicalize_name(r.name) == name)
    assert not req.specifier.contains(vulnerable), f"{req} still admits {vulnerable}"


def test_the_build_requirement_excludes_the_vulnerable_setuptools() -> None:
    (req,) = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    assert req.name == "setuptools" and not req.specifier.contains("78.1.0")


def test_the_readme_deploys_with_the_lock() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "pip install --require-hashes -r requirements.lock && pip install --no-deps ." in readme
