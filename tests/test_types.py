"""`mypy --strict` over the package, as it installs: `workers/` is checked as
`hybrid.workers`, so the tree is laid out that way (links, not copies) first."""

from __future__ import annotations

from pathlib import Path

from mypy import api

ROOT = Path(__file__).resolve().parent.parent


def installed_layout(target: Path) -> Path:
    """`target/hybrid` with the repository's `hybrid/` entries and `workers/` as
    `hybrid/workers`, all symbolic links to the sources."""
    package = target / "hybrid"
    package.mkdir()
    for entry in (ROOT / "hybrid").iterdir():
        if entry.name != "__pycache__":
            (package / entry.name).symlink_to(entry)
    (package / "workers").symlink_to(ROOT / "workers")
    return package


def test_the_package_type_checks_strictly(tmp_path):
    package = installed_layout(tmp_path)
    out, err, status = api.run(["--config-file", str(ROOT / "pyproject.toml"),
                                "--cache-dir", str(tmp_path / "cache"), str(package)])
    report = out.replace(f"{package}/workers/", "workers/").replace(f"{package}/", "hybrid/")
    assert status == 0, report + err
