"""A fault is one module: dropped into a package on the fault search path, with no other
edit, it is in ``streamchaos faults``, config validation, the contract tests and the
README's generated fault table."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from streamchaos.errors import ConfigError
from streamchaos.faults.describe import README_BEGIN, README_END, fault_table, with_fault_table
from streamchaos.faults.registry import FAULTS, PACKAGES_ENV, discover, search_path

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests/samples/flip_key.py"


@pytest.fixture(scope="module")
def plugin_env(tmp_path_factory):
    """An environment whose fault search path has a package holding only the sample."""
    where = tmp_path_factory.mktemp("plugins")
    package = where / "myfaults"
    package.mkdir()
    (package / "__init__.py").write_text("")
    shutil.copy(SAMPLE, package / "flip_key.py")
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(where), str(ROOT)]),
        PACKAGES_ENV: "myfaults",
    }


def run(env, *args, cwd=ROOT):
    return subprocess.run(
        [sys.executable, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def test_listed_by_streamchaos_faults(plugin_env):
    out = run(plugin_env, "-m", "streamchaos", "faults")
    assert out.returncode == 0, out.stderr
    assert "flip_key — keys that no longer match their entity" in out.stdout
    assert "  position: int = 0  — which byte of the key to flip" in out.stdout


def test_validated_in_configs(plugin_env, tmp_path):
    good, bad = tmp_path / "good.yaml", tmp_path / "bad.yaml"
    route = "routes: [{source: s, shadow: s.shadow, faults: [{type: flip_key, %s}]}]"
    good.write_text("experiment: e\n" + route % "position: 2")
    bad.write_text("experiment: e\n" + route % "position: -1")
    assert run(plugin_env, "-m", "streamchaos", "validate", "-c", str(good)).returncode == 0
    out = run(plugin_env, "-m", "streamchaos", "validate", "-c", str(bad))
    assert out.returncode == 2
    assert "routes[0].faults[0].position: Input should be greater than or equal to 0" in (
        out.stderr
    )


def test_run_by_the_contract_tests(plugin_env):
    out = run(
        plugin_env,
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "tests/unit/test_faults_contract.py",
        "tests/unit/test_doctests.py",
        "-k",
        "flip_key",
    )
    assert out.returncode == 0, out.stdout[-3000:]
    assert "9 passed" in out.stdout, out.stdout[-3000:]  # 7 contract tests and 2 doctests


def test_in_the_generated_readme_table(plugin_env):
    out = run(plugin_env, "-m", "streamchaos", "faults", "--markdown")
    assert out.returncode == 0, out.stderr
    row = "| `flip_key` | keys that no longer match their entity: one byte of the key flipped |"
    assert row in out.stdout


def test_readme_table_is_the_generated_one():
    """Regenerate with ``make docs`` (``streamchaos faults --readme README.md``)."""
    readme = (ROOT / "README.md").read_text()
    assert with_fault_table(readme) == readme
    assert README_BEGIN in readme and README_END in readme
    assert all(f"| `{name}` |" in fault_table() for name in FAULTS)


def test_search_path_reads_the_environment():
    assert search_path({}) == ["streamchaos.faults"]
    assert search_path({PACKAGES_ENV: " a.b , c,"}) == ["streamchaos.faults", "a.b", "c"]


def test_a_package_that_is_not_there_is_named():
    with pytest.raises(ConfigError, match="cannot import 'no_such_faults'"):
        discover(["no_such_faults"])


def test_a_type_defined_twice_is_named(tmp_path, monkeypatch):
    package = tmp_path / "twice"
    package.mkdir()
    (package / "__init__.py").write_text("")
    text = (ROOT / "streamchaos/faults/drop.py").read_text()
    (package / "again.py").write_text(text)  # another module answering to type: drop
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ConfigError, match="'drop' is defined by both"):
        discover(["streamchaos.faults", "twice"])


def _package(tmp_path, monkeypatch, name, text):
    package = tmp_path / name
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "broken.py").write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))


def test_a_fault_module_that_does_not_import_is_named(tmp_path, monkeypatch):
    _package(tmp_path, monkeypatch, "bad_import", "import no_such_module_here\n")
    with pytest.raises(ConfigError, match=r"fault module bad_import\.broken does not import"):
        discover(["bad_import"])


def test_a_type_tag_that_differs_from_its_default_is_named(tmp_path, monkeypatch):
    text = SAMPLE.read_text().replace(
        'type: Literal["flip_key"] = "flip_key"', 'type: Literal["flip"] = "flip_key"'
    )
    _package(tmp_path, monkeypatch, "bad_tag", text)
    with pytest.raises(ConfigError, match=r"FlipKeyConfig\.type: give it one name"):
        discover(["bad_tag"])
