"""Packaging and the README/CI contract."""

import pathlib
import re
import tomllib

ROOT = pathlib.Path(__file__).resolve().parents[1]


def _readme_commands():
    return re.findall(r"```bash\n(.+?)\n```", (ROOT / "README.md").read_text())


def test_ci_runs_exactly_the_readme_test_command():
    test_command = _readme_commands()[1]
    ci = (ROOT / ".ci" / "run").read_text().splitlines()
    assert test_command in ci, f"README test command {test_command!r} is not a line of .ci/run"


def test_readme_starts_with_install_and_run_then_test():
    install, test = _readme_commands()[:2]
    assert "torch==2.13.0" in install and "elbocheck verify" in install
    assert "pytest" in test


def test_every_code_folder_is_a_listed_package():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    packages, package_dir = set(config["packages"]), config["package-dir"]
    folder_of = {folder: name for name, folder in package_dir.items()}
    for init in ROOT.glob("*/**/__init__.py"):
        folder = init.parent.relative_to(ROOT).as_posix()
        if folder.startswith(("tests", "benchmarks", "notebooks", "build")):
            continue
        top, _, rest = folder.partition("/")
        if top not in folder_of:
            continue
        name = folder_of[top] + ("." + rest.replace("/", ".") if rest else "")
        assert name in packages, f"{folder} is not listed in pyproject's packages (as {name})"
    assert "models" not in packages and all(p.startswith("elbocheck") for p in packages)
