"""Fail unless each package's newest CHANGELOG entry is the version in its pyproject.toml."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HEADING = re.compile(r"^## \[?(\d+\.\d+\.\d+[^\]\s]*)\]?", re.MULTILINE)
VERSION = re.compile(r'^version\s*=\s*"([^"]+)"', re.MULTILINE)


def check(package_dir: Path) -> str | None:
    found = VERSION.search((package_dir / "pyproject.toml").read_text())
    if found is None:
        return f"{package_dir.name}: pyproject.toml has no static version"
    version = found.group(1)
    changelog = package_dir / "CHANGELOG.md"
    if not changelog.is_file():
        return f"{package_dir.name}: CHANGELOG.md is missing"
    match = HEADING.search(changelog.read_text())
    if match is None:
        return f"{package_dir.name}: CHANGELOG.md has no '## [x.y.z]' entry"
    if match.group(1) != version:
        return (
            f"{package_dir.name}: version {version} but newest CHANGELOG entry is {match.group(1)}"
        )
    return None


def main() -> int:
    problems = [p for d in sorted((ROOT / "packages").iterdir()) if (p := check(d))]
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print("every package's newest CHANGELOG entry matches its version")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
