"""A project's dependencies and their locked versions, read from its manifests and lockfiles.

Python: `pyproject.toml` (PEP 621 `[project]`, PEP 735 `[dependency-groups]`, Poetry's
`[tool.poetry]`), `requirements*.txt`, `uv.lock`, `poetry.lock`, `Pipfile.lock`.
JavaScript: `package.json` with `package-lock.json`, `pnpm-lock.yaml` or `yarn.lock`.
TOML through tomllib, JSON through json, YAML through PyYAML, requirement strings through
`packaging`. A file that cannot be read is a `ManifestProblem` naming the file (and line
when known); the rest of the project is still read.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

Ecosystem = Literal["pypi", "npm"]


@dataclass
class Dependency:
    """One dependency of the project."""

    name: str
    """As the manifest spells it; `key` is the name compared with sources' packages."""
    ecosystem: Ecosystem
    spec: str = ""
    """The declared constraint (`>=4.2,<5`, `^18.2.0`), "" when none."""
    locked: str | None = None
    """The version the lockfile (or an exact pin) fixes, when there is one."""
    files: list[str] = field(default_factory=list)
    """The files that name it (manifest first, then lockfile)."""

    @property
    def key(self) -> str:
        return normalise(self.name, self.ecosystem)


@dataclass(frozen=True)
class ManifestProblem:
    """A file that could not be read (in part), and why."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        return f"{self.file}{f':{self.line}' if self.line else ''}: {self.message}"


@dataclass
class ProjectDependencies:
    """What a project's files say it depends on."""

    root: Path
    dependencies: list[Dependency]
    files: list[str]
    """The manifests and lockfiles read, relative to `root`."""
    problems: list[ManifestProblem]


MANIFESTS = ("pyproject.toml", "package.json")
LOCKFILES = ("uv.lock", "poetry.lock", "Pipfile.lock", "package-lock.json", "pnpm-lock.yaml", "yarn.lock")


def normalise(name: str, ecosystem: Ecosystem) -> str:
    """Return the name packages are compared by: PEP 503 for PyPI, lower case for npm."""
    return canonicalize_name(name) if ecosystem == "pypi" else name.lower()


def read_project(root: Path) -> ProjectDependencies:
    """Return the dependencies the project at `root` declares, with the versions its lockfiles fix.

    Only direct dependencies are listed (those a manifest names); a lockfile supplies their
    versions. With no manifest, a lockfile's packages are the dependencies.
    """
    declared: dict[tuple[Ecosystem, str], Dependency] = {}
    locked: dict[tuple[Ecosystem, str], tuple[str, str]] = {}
    problems: list[ManifestProblem] = []
    files: list[str] = []
    readers = [("pyproject.toml", _pyproject), ("package.json", _package_json),
               *((p.name, _requirements) for p in sorted(root.glob("requirements*.txt")))]
    for name, reader in readers:
        path = root / name
        if not path.is_file():
            continue
        files.append(name)
        try:
            for dep in reader(path, problems):
                dep.files.append(name)
                existing = declared.setdefault((dep.ecosystem, dep.key), dep)
                if existing is not dep:
                    existing.spec = existing.spec or dep.spec
                    existing.locked = existing.locked or dep.locked
                    existing.files.append(name)
        except _Unreadable as exc:
            problems.append(exc.problem)
    for name, lock_reader in (("uv.lock", _toml_lock), ("poetry.lock", _toml_lock), ("Pipfile.lock", _pipfile_lock),
                              ("package-lock.json", _package_lock), ("pnpm-lock.yaml", _pnpm_lock),
                              ("yarn.lock", _yarn_lock)):
        path = root / name
        if not path.is_file():
            continue
        files.append(name)
        try:
            for ecosystem, package, version in lock_reader(path):
                locked.setdefault((ecosystem, normalise(package, ecosystem)), (version, name))
        except _Unreadable as exc:
            problems.append(exc.problem)
    if not declared:  # a lockfile alone: its packages are what the project uses
        for (ecosystem, key), (version, file) in locked.items():
            declared[(ecosystem, key)] = Dependency(key, ecosystem, locked=version, files=[file])
    for (ecosystem, key), dep in declared.items():
        if (ecosystem, key) in locked:
            version, file = locked[(ecosystem, key)]
            dep.locked = version
            if file not in dep.files:
                dep.files.append(file)
    deps = sorted(declared.values(), key=lambda d: (d.ecosystem, d.key))
    return ProjectDependencies(root, deps, files, problems)


class _Unreadable(Exception):
    def __init__(self, file: Path, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.problem = ManifestProblem(file.name, line, message)


def _load_toml(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        # Python < 3.14 gives the place only inside the message: "... (at line 5, column 14)".
        raise _Unreadable(path, f"not valid TOML: {exc}", getattr(exc, "lineno", None)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(path, f"cannot read: {exc}") from exc


def _load_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise _Unreadable(path, f"not valid JSON: {exc.msg}", exc.lineno) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(path, f"cannot read: {exc}") from exc


def _load_yaml(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise _Unreadable(path, f"not valid YAML: {getattr(exc, 'problem', exc)}",
                          mark.line + 1 if mark is not None else None) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(path, f"cannot read: {exc}") from exc


def _requirement(text: str, path: Path, line: int | None, problems: list[ManifestProblem]) -> Dependency | None:
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        problems.append(ManifestProblem(path.name, line, f"not a requirement ({str(exc).splitlines()[0]})"))
        return None
    pins = [s.version for s in req.specifier if s.operator in ("==", "===") and "*" not in s.version]
    return Dependency(req.name, "pypi", str(req.specifier), pins[0] if pins else None)


def _pyproject(path: Path, problems: list[ManifestProblem]) -> Iterator[Dependency]:
    data = _load_toml(path)
    project = data.get("project", {})
    strings = list(project.get("dependencies", []))
    for group in project.get("optional-dependencies", {}).values():
        strings += group
    for group in data.get("dependency-groups", {}).values():
        strings += [item for item in group if isinstance(item, str)]  # {include-group = ...} tables name no package
    for text in strings:
        if (dep := _requirement(text, path, None, problems)) is not None:
            yield dep
    poetry = data.get("tool", {}).get("poetry", {})
    tables = [poetry.get("dependencies", {}), poetry.get("dev-dependencies", {}),
              *(g.get("dependencies", {}) for g in poetry.get("group", {}).values())]
    for table in tables:
        for name, constraint in table.items():
            if name.lower() == "python":
                continue
            spec = constraint if isinstance(constraint, str) else str(constraint.get("version", ""))
            yield Dependency(name, "pypi", spec)


def _requirements(path: Path, problems: list[ManifestProblem]) -> Iterator[Dependency]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(path, f"cannot read: {exc}") from exc
    for number, raw in enumerate(lines, 1):
        text = raw.split(" #", 1)[0].strip()
        # Options (-r other.txt, -e ., --index-url), comments and direct URLs name no package version.
        if not text or text.startswith(("#", "-")) or ("://" in text and "@" not in text):
            continue
        if (dep := _requirement(text, path, number, problems)) is not None:
            yield dep


def _package_json(path: Path, problems: list[ManifestProblem]) -> Iterator[Dependency]:
    data = _load_json(path)
    for section in ("dependencies", "devDependencies", "peerDependencies", "optionalDependencies"):
        for name, spec in (data.get(section) or {}).items():
            yield Dependency(name, "npm", str(spec))


def _toml_lock(path: Path) -> Iterator[tuple[Ecosystem, str, str]]:
    """uv.lock and poetry.lock: `[[package]]` tables with name and version."""
    for package in _load_toml(path).get("package", []):
        if "name" in package and "version" in package:
            yield "pypi", package["name"], str(package["version"])


def _pipfile_lock(path: Path) -> Iterator[tuple[Ecosystem, str, str]]:
    data = _load_json(path)
    for section in ("default", "develop"):
        for name, entry in (data.get(section) or {}).items():
            version = str(entry.get("version", "")) if isinstance(entry, dict) else ""
            if version.startswith("=="):
                yield "pypi", name, version[2:]


def _package_lock(path: Path) -> Iterator[tuple[Ecosystem, str, str]]:
    data = _load_json(path)
    for key, entry in (data.get("packages") or {}).items():  # lockfileVersion 2 and 3
        # Only top-level installs: nested node_modules hold other packages' copies.
        if key.startswith("node_modules/") and key.count("node_modules/") == 1 and "version" in entry:
            yield "npm", key.removeprefix("node_modules/"), entry["version"]
    for name, entry in (data.get("dependencies") or {}).items():  # lockfileVersion 1
        if isinstance(entry, dict) and "version" in entry:
            yield "npm", name, entry["version"]


def _pnpm_lock(path: Path) -> Iterator[tuple[Ecosystem, str, str]]:
    data = _load_yaml(path) or {}
    importers = data.get("importers", {}).get(".", data)  # v6+ keeps the root's deps under importers
    for section in ("dependencies", "devDependencies", "optionalDependencies"):
        for name, entry in (importers.get(section) or {}).items():
            version = entry.get("version") if isinstance(entry, dict) else entry
            if version:
                yield "npm", name, str(version).split("(")[0]  # "18.2.0(react@18.2.0)": peers in parentheses


def _yarn_lock(path: Path) -> Iterator[tuple[Ecosystem, str, str]]:
    """yarn.lock: Berry (v2+) is YAML; classic v1 is its own indented `key:` / `version "x"` format."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _Unreadable(path, f"cannot read: {exc}") from exc
    if "__metadata:" in text:
        for key, entry in (_load_yaml(path) or {}).items():
            if key != "__metadata" and isinstance(entry, dict) and "version" in entry:
                for descriptor in str(key).split(","):
                    yield "npm", _yarn_name(descriptor.strip()), str(entry["version"])
        return
    yield from _yarn_classic(path, text)


def _yarn_classic(path: Path, text: str) -> Iterator[tuple[Ecosystem, str, str]]:
    names: list[str] = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        if not line[0].isspace():
            if not line.rstrip().endswith(":"):
                raise _Unreadable(path, "expected a package entry ending with ':'", number)
            names = [_yarn_name(d.strip().strip('"')) for d in line.rstrip()[:-1].split(",")]
        elif line.strip().startswith("version ") and names:
            version = line.strip()[len("version "):].strip().strip('"')
            for name in dict.fromkeys(names):
                yield "npm", name, version
            names = []


def _yarn_name(descriptor: str) -> str:
    """Return the package of a yarn descriptor: `lodash@^4.17.21` → lodash, `@babel/core@npm:^7` → @babel/core."""
    descriptor = descriptor.strip('"')
    at = descriptor.find("@", 1)  # a scope's leading @ is part of the name
    return descriptor[:at] if at > 0 else descriptor
