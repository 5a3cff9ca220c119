"""``elbocheck verify``: table, JSON shape, exit status, bad names."""

import json
import subprocess
import sys

from elbocheck.cli import main


def test_verify_json_shape_and_exit_status(capsys):
    assert main(["verify", "cdvae", "condvae", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in data] == ["condvae", "cdvae"]
    step = data[1]["steps"][3]
    for key in ("index", "relation", "verdict", "assumptions", "certificate", "counterexample", "seconds"):
        assert key in step
    assert step["verdict"] == "proven" and step["assumptions"]
    refuted = data[0]["steps"][0]
    assert refuted["verdict"] == "refuted" and refuted["counterexample"]["instance"]["factors"]


def test_verify_table(capsys):
    assert main(["verify", "infovae_seed"]) == 0
    out = capsys.readouterr().out
    assert "refuted" in out and "proven" in out and "match their expected verdicts" in out


def test_unknown_name_lists_the_choices(capsys):
    assert main(["verify", "no_such_derivation"]) == 2
    err = capsys.readouterr().err
    assert "no_such_derivation" in err and "cdvae" in err


def test_console_script_runs_whole_library():
    completed = subprocess.run([sys.executable, "-m", "elbocheck", "verify"], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert "0 undecided" in completed.stdout
