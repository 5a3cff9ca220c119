"""The top-level ``elbocheck`` command: version, help written for users, and the ``error:`` prefix of every
command's errors."""

import re
import subprocess
import sys

import pytest

import elbocheck
from elbocheck import cli


def _help(argv, capsys):
    with pytest.raises(SystemExit) as caught:
        cli.main(argv)
    assert caught.value.code == 0
    return capsys.readouterr().out


def test_version(capsys):
    from importlib.metadata import version

    assert _help(["--version"], capsys).strip() == f"elbocheck {elbocheck.__version__}"
    assert elbocheck.__version__ == version("elbocheck")  # the installed distribution says the same


def test_help_is_written_for_users(capsys):
    text = _help(["--help"], capsys)
    for name in cli.SUBCOMMANDS:
        assert re.search(rf"^\s+{name}\b", text, re.MULTILINE), name
    assert "examples:" in text and "elbocheck train vae --data digits" in text and "--version" in text
    assert "'elbocheck COMMAND --help'" in text


@pytest.mark.parametrize("argv", [["--help"], ["train", "--help"], ["verify", "--help"]])
def test_help_has_no_module_names_or_markup(argv, capsys):
    text = _help(argv, capsys)
    assert not re.search(r"\belbocheck\.[a-z_]+", text), "a module name in the help"
    for markup in ("``", "::", ":mod:", ":class:", ":func:"):
        assert markup not in text, markup


def test_every_command_prefixes_its_errors(tmp_path, capsys):
    cases = [
        (["verify", "no_such_derivation"], "elbocheck verify: error: unknown derivation(s) no_such_derivation"),
        (["experiment"], "elbocheck experiment: error: no experiment given; choose from: kl-enough"),
        (["experiment", "kl-enough", "--full", "--preset", "small"], "elbocheck experiment: error: --full and"),
        (["train", "vae"], "elbocheck train: error: --data: a data set is required"),
        (["plot", str(tmp_path / "missing")], "elbocheck plot: error: "),
    ]
    for argv, start in cases:
        assert cli.main(argv) == 2, argv
        error = capsys.readouterr().err
        assert error.startswith(start) and error.count("\n") == 1, error


def test_argument_errors_of_every_command_are_prefixed_too(capsys):
    for argv, prog in ((["nope"], "elbocheck"), (["train", "--epochs", "x"], "elbocheck train"),
                       (["verify", "--nope"], "elbocheck verify"), (["experiment", "--seeds", "a"],
                                                                    "elbocheck experiment")):
        with pytest.raises(SystemExit) as caught:
            cli.main(argv)
        assert caught.value.code == 2
        assert capsys.readouterr().err.strip().splitlines()[-1].startswith(f"{prog}: error: ")


def test_an_interrupt_exits_130_with_one_line(monkeypatch, capsys):
    def interrupted(args):
        raise KeyboardInterrupt

    monkeypatch.setattr("elbocheck.verify_command.run", interrupted)
    assert cli.main(["verify"]) == 130
    assert capsys.readouterr().err == "elbocheck verify: interrupted\n"


def test_the_console_entry_point_prints_the_version():
    completed = subprocess.run([sys.executable, "-m", "elbocheck", "--version"], capture_output=True, text=True,
                               timeout=120)
    assert completed.returncode == 0 and completed.stdout.strip() == f"elbocheck {elbocheck.__version__}"
