"""A bake of each pset builds an sdist and a wheel that pass `twine check --strict`,
as its release workflow builds and checks them before publishing.

These tests need the package index: `python -m build` installs the build backend
into an isolated environment.
"""

import sys
import tarfile
import zipfile

import pytest
from conftest import PSETS, run


@pytest.mark.parametrize("pset", list(PSETS))
def test_bake_builds_an_sdist_and_a_wheel_that_pass_twine_check(
    pset, bake_once, tmp_path
):
    result = bake_once({"pset": pset})
    assert result.exit_code == 0, result.exception
    project, slug = result.project_path, result.context["project_slug"]
    dist = tmp_path / "dist"

    run([sys.executable, "-m", "build", "--outdir", dist, project], cwd=project)
    run([sys.executable, "-m", "twine", "check", "--strict", *dist.iterdir()], cwd=dist)

    # The release workflow finds the sdist by the tag's version: slug-version.tar.gz.
    version = "0.1.0"
    sdist = dist / f"{slug}-{version}.tar.gz"
    wheel = dist / f"{slug}-{version}-py3-none-any.whl"
    assert sorted(dist.iterdir()) == [wheel, sdist]
    with tarfile.open(sdist) as archive:
        names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
    assert {"README.md", "LICENSE", "pyproject.toml", f"{slug}/cli.py"} <= names
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert f"{slug}/__main__.py" in names
    assert not any(name.startswith("tests/") for name in names)
