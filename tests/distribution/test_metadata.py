"""pyproject.toml declares what the code imports, keeps Qt out, and carries release metadata."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib import metadata
from pathlib import Path

import pytest
import yaml
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PROJECT = PYPROJECT["project"]
EXTRAS = PROJECT["optional-dependencies"]
QT_BINDINGS = {"pyqt5", "pyqt6", "pyside2", "pyside6"}
# what is imported but deliberately optional: the extra that provides it
OPTIONAL = {"napari": "all", "distributed": "distributed"}
GITHUB = "https://github.com/napari-losslens/napari-losslens"


def _names(requirements) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def _imported_top_level_modules() -> set[str]:
    """Every absolute import in src/, at any depth (lazy imports included)."""
    found = set()
    for path in (ROOT / "src").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"napari_losslens", "__future__"}


def test_build_backend_reads_the_spdx_license():
    requires = [Requirement(r) for r in PYPROJECT["build-system"]["requires"]]
    setuptools = next(r for r in requires if r.name == "setuptools")
    assert "76.9" not in setuptools.specifier and "77.0" in setuptools.specifier
    assert any(r.name == "setuptools-scm" for r in requires)
    assert PROJECT["dynamic"] == ["version"]


def test_license_is_bsd3_and_shipped():
    assert PROJECT["license"] == "BSD-3-Clause"
    assert PROJECT["license-files"] == ["LICENSE"]
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("BSD 3-Clause License")
    assert "Copyright (c) 2026, napari-losslens developers" in text
    assert "Neither the name of the copyright holder" in text  # clause 3


def test_every_imported_package_is_declared():
    dists = metadata.packages_distributions()
    hard = _names(PROJECT["dependencies"])
    missing = {}
    for module in sorted(_imported_top_level_modules()):
        if module in OPTIONAL:
            assert module in _names(EXTRAS[OPTIONAL[module]]), (module, OPTIONAL[module])
            continue
        provided_by = {canonicalize_name(d) for d in dists.get(module, [module])}
        if not provided_by & hard:
            missing[module] = sorted(provided_by)
    assert not missing, f"imported in src/ but not in [project.dependencies]: {missing}"


def test_no_qt_binding_in_any_dependency_list():
    lists = {"dependencies": PROJECT["dependencies"], **EXTRAS}
    for name, requirements in lists.items():
        assert not _names(requirements) & QT_BINDINGS, name
    # napari's convention: the binding comes only through napari[all], in an `all` extra
    (napari_all,) = (Requirement(r) for r in EXTRAS["all"])
    assert napari_all.name == "napari" and napari_all.extras == {"all"}
    assert "napari" not in _names(PROJECT["dependencies"])


def _closure(requirements, env) -> set[str]:
    """The installed distributions a list of requirements pulls in, transitively."""
    seen: set[str] = set()
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        key = name + "[" + ",".join(sorted(req.extras)) + "]"
        if key in seen:
            continue
        seen.add(key)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue  # not installed here (a platform-specific dependency)
        for sub in requires:
            for wanted in ("", *sorted(req.extras)):
                todo.append((Requirement(sub), wanted))
    return {key.split("[")[0] for key in seen}


def test_plain_install_pulls_no_qt_binding_and_no_napari():
    pulled = _closure(PROJECT["dependencies"], default_environment())
    assert {"torch", "numba", "magicgui", "superqt", "matplotlib"} <= pulled
    assert not pulled & QT_BINDINGS, pulled & QT_BINDINGS
    assert "napari" not in pulled


def test_install_hints_name_declared_extras():
    hint = re.compile(r"napari-losslens\[([\w,-]+)\]")
    files = [*(ROOT / "src").rglob("*.py"), *(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    used = {
        (path.relative_to(ROOT).as_posix(), extra)
        for path in files
        for match in hint.finditer(path.read_text())
        for extra in match.group(1).split(",")
    }
    assert used, "no install hints found: the pattern is stale"
    unknown = sorted((path, extra) for path, extra in used if extra not in EXTRAS)
    assert not unknown, f"hints naming an extra pyproject.toml does not declare: {unknown}"


def _tested_pythons() -> list[str]:
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "test_and_deploy.yml").read_text())
    return [str(v) for v in workflow["jobs"]["test"]["strategy"]["matrix"]["python-version"]]


def test_python_versions_agree_between_metadata_and_ci():
    classified = [
        c.rsplit(" :: ", 1)[1]
        for c in PROJECT["classifiers"]
        if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)
    ]
    assert classified == _tested_pythons()
    requires = SpecifierSet(PROJECT["requires-python"])
    assert all(requires.contains(v + ".0") for v in classified)
    below = f"3.{int(classified[0].split('.')[1]) - 1}.0"
    assert not requires.contains(below), "requires-python admits a version CI does not test"


@pytest.mark.parametrize(
    "prefix",
    [
        "Development Status :: ",
        "Framework :: napari",
        "Intended Audience :: ",
        "Operating System :: POSIX :: Linux",
        "Operating System :: MacOS",
        "Operating System :: Microsoft :: Windows",
        "Topic :: Scientific/Engineering :: Image Processing",
    ],
)
def test_classifiers_are_complete(prefix):
    assert any(c.startswith(prefix) for c in PROJECT["classifiers"])


def test_urls_and_contact():
    urls = PROJECT["urls"]
    assert urls["Source"] == GITHUB
    assert urls["Issues"] == GITHUB + "/issues"
    assert urls["Documentation"].startswith(GITHUB)
    (author,) = PROJECT["authors"]
    assert author["name"] == "napari-losslens developers"
    assert re.fullmatch(r"[\w.+-]+@[\w.-]+\.\w+", author["email"])


def test_entry_points_and_manifest():
    assert PROJECT["scripts"] == {"losslens": "napari_losslens.cli:main"}
    manifest = PROJECT["entry-points"]["napari.manifest"]
    assert manifest == {"napari-losslens": "napari_losslens:napari.yaml"}
    assert yaml.safe_load((ROOT / "napari.yaml").read_text())["name"] == PROJECT["name"]
