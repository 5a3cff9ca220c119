"""``elbocheck train`` as a new user meets it: every bad command line gets one clear line naming the problem,
prefixed ``elbocheck train: error:``, with the documented exit code, and never a traceback."""

import importlib.util
import json
import shlex

import numpy as np
import pytest
import torch

from elbocheck import train_command
from elbocheck.cli import main

TINY = ["--model-option=hidden_dim=8", "--model-option=num_hidden_layers=1", "--model-option=architecture=mlp",
        "--model-option=latent_dim=2", "--data-option=size=100", "--batch-size=32", "--max-steps-per-epoch=2",
        "--device=cpu", "--no-progress"]


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """A finished 2-epoch run, one with both checkpoints destroyed, one with a garbage config, a file, bad data."""
    root = tmp_path_factory.mktemp("runs")
    for name in ("done", "corrupt"):
        assert train_command.main(["vae", "--data", "digits", "--epochs", "2", "--out", str(root / name), *TINY]) == 0
    (root / "corrupt" / "checkpoint.pt").write_bytes(b"\0" * 64)
    (root / "corrupt" / "checkpoint.previous.pt").write_bytes(torch.zeros(3).numpy().tobytes())
    (root / "bad-config").mkdir()
    (root / "bad-config" / "config.json").write_text("{not json")
    (root / "file").write_text("a file")
    (root / "notes.txt").write_text("not images\n")
    np.save(root / "images.npy", np.zeros((2, 8, 8)))
    return root


# (command line, exit code, what the message must say); RUNS is replaced by the fixture's folder.
BAD_COMMAND_LINES = [
    ([], 2, "MODEL: a model name is required (or --resume RUN_DIR); valid choices: vae, beta_vae"),
    (["wae", "--data", "digits"], 2, "MODEL: unknown model 'wae'; valid choices: vae"),
    (["vae"], 2, "--data: a data set is required; valid choices: digits"),
    (["vae", "--data", "cifar10"], 2, "data: unknown data set 'cifar10'; valid choices: digits"),
    (["vae", "--data", "digits", "--epochs", "0"], 2, "epochs: must be >= 1, got 0"),
    (["vae", "--data", "digits", "--batch-size", "0"], 2, "batch_size: must be >= 1, got 0"),
    (["beta_tcvae", "--data", "digits", "--batch-size", "1"], 2,
     "batch_size: model 'beta_tcvae' needs batches of at least 2 examples (its minibatch estimates of q(z), hence of "
     "MI and TC, need two or more examples (with one they are 0)), got 1"),
    (["infovae", "--data", "digits", "--batch-size", "1"], 2, "model 'infovae' needs batches of at least 2"),
    (["vae", "--data", "digits", "--lr", "-1"], 2, "lr and adversary_lr must be > 0, got -1.0, None"),
    (["vae", "--data", "digits", "--lr", "fast"], 2, "argument --lr: invalid float value: 'fast'"),
    (["vae", "--data", "digits", "--device", "tpu"], 2, "device: cannot parse 'tpu'; valid choices: auto, cpu, cuda"),
    (["vae", "--data", "digits", "--threads", "-1"], 2, "--threads: must be >= 0 (0: torch's default), got -1"),
    (["vae", "--data", "digits", "--max-steps-per-epoch", "0"], 2, "max_steps_per_epoch: must be >= 1, got 0"),
    (["vae", "--data", "digits", "--divergence-factor", "0"], 2, "divergence_factor: must be > 0"),
    (["vae", "--data", "digits", "--divergence-floor", "low"], 2,
     "argument --divergence-floor: expected a number or 'none', got 'low'"),
    (["vae", "--data", "digits", "--model-option", "beta"], 2, "--model-option: expected KEY=VALUE, got 'beta'"),
    (["vae", "--data", "digits", "--model-option", "betta=4"], 2,
     "model option(s) betta not understood by model 'vae'; valid options: latent_dim"),
    (["vae", "--data", "digits", "--data-option", "n=3"], 2, "valid options: likelihood, size, seed"),
    (["vae", "--data", "digits", "--data-option", "size=5000"], 2, "size: must be between 1 and 1797, got 5000"),
    (["condvae", "--data", "sprites", "--data-option", "size=8"], 2,
     "needs class labels y, but data set 'sprites' has none"),
    (["diva", "--data", "digits"], 2, "model 'diva' needs domain labels d, but data set 'digits' has none"),
    (["vae", "--data", "mnist"], 2, "mnist' needs option(s) path"),
    (["vae", "--data", "mnist", "--data-path", "RUNS/missing.gz"], 2, "path: no such file: RUNS/missing.gz"),
    (["vae", "--data", "mnist", "--data-path", "RUNS/notes.txt"], 2, "path: RUNS/notes.txt has magic number"),
    (["vae", "--data", "dsprites", "--data-path", "RUNS/notes.txt"], 2,
     "path: RUNS/notes.txt is not a zip archive; expected the dSprites .npz"),
    (["vae", "--data", "dsprites", "--data-path", "RUNS/images.npy"], 2, "path: RUNS/images.npy is a single .npy"),
    (["vae", "--data", "digits", "--out", "RUNS/file"], 5, "out: RUNS/file is a file, not a directory"),
    (["vae", "--data", "digits", "--epochs", "2", "--out", "RUNS/done", "--seed", "3", *TINY], 5,
     "out: RUNS/done holds another run (vae on digits (seed 0): 2 of 2 epochs, completed); nothing was changed"),
    (["vae", "--data", "digits", "--epochs", "2", "--out", "RUNS/done", *TINY], 5,
     "out: RUNS/done already holds this run"),
    (["--resume", "RUNS/missing"], 2, "resume: no config.json in RUNS/missing (is it a run directory?)"),
    (["--resume", "RUNS/bad-config"], 2, "resume: RUNS/bad-config/config.json is not a readable config"),
    (["--resume", "RUNS/done", "--seed", "1"], 2, "--resume: --seed cannot change when resuming a run"),
    (["--resume", "RUNS/done", "--overwrite"], 2, "--resume: --overwrite cannot change when resuming a run"),
    (["beta_vae", "--resume", "RUNS/done"], 2, "MODEL: the run in RUNS/done trains 'vae', not 'beta_vae'"),
    (["--resume", "RUNS/done", "--data", "swiss_roll"], 2, "--data: the run in RUNS/done uses 'digits'"),
    (["--resume", "RUNS/done", "--epochs", "1"], 2,
     "epochs: the run in RUNS/done has completed 2 epochs, so --epochs must be at least 2 (got 1)"),
    (["--resume", "RUNS/corrupt", "--epochs", "3"], 7,
     "cannot read any checkpoint in RUNS/corrupt: checkpoint.pt: not a torch checkpoint"),
]
if not torch.cuda.is_available():
    BAD_COMMAND_LINES.append((["vae", "--data", "digits", "--device", "cuda"], 2,
                              "device: CUDA was requested but no CUDA device is available; use --device cpu or auto"))
if importlib.util.find_spec("tensorboard") is None:
    BAD_COMMAND_LINES.append((["vae", "--data", "digits", "--tensorboard"], 2,
                              "tensorboard: logging to TensorBoard needs the optional extra"))


@pytest.mark.parametrize("argv,code,message", BAD_COMMAND_LINES, ids=[" ".join(c[0]) or "(none)"
                                                                       for c in BAD_COMMAND_LINES])
def test_a_bad_command_line_gets_one_clear_line_and_its_exit_code(runs, capsys, argv, code, message):
    argv = [word.replace("RUNS", str(runs)) for word in argv]
    before = _files(runs)
    with pytest.raises(SystemExit) if "invalid float" in message or "expected a number" in message else _no_exit():
        assert main(["train", *argv]) == code
    error = capsys.readouterr().err
    assert "Traceback" not in error
    last = error.strip().splitlines()[-1]
    assert last.startswith("elbocheck train: error: "), error
    assert message.replace("RUNS", str(runs)) in last, error
    if code != 2 or "argument" not in message:
        assert error.count("\n") == 1, error  # one line (argparse adds its usage line before its own errors)
    if code != 7:  # nothing changed (a run with no readable checkpoint is marked failed in its status.json)
        assert _files(runs) == before


def _files(root):
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime_ns) for p in root.rglob("*") if p.is_file()}


class _no_exit:
    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False


def test_the_corrupt_run_is_marked_failed_with_the_reason(runs, capsys):
    assert main(["train", "--resume", str(runs / "corrupt"), "--epochs", "3"]) == 7
    status = json.loads((runs / "corrupt" / "status.json").read_text())
    assert status["state"] == "failed" and status["failure"] == "checkpoint_unreadable"
    assert status["message"] in capsys.readouterr().err


def test_the_exit_codes_are_documented_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for code, meaning in ((0, "done"), (1, "NaN or infinite"), (2, "bad arguments or input files"),
                          (3, "diverged"), (4, "in use by another training process"), (5, "holds another run"),
                          (6, "cannot write the run directory"), (7, "no checkpoint of the run can be read"),
                          (130, "interrupted")):
        line = next(line for line in text.splitlines() if line.strip().startswith(f"{code} "))
        assert meaning in line
    assert train_command.EXIT_WRITE_FAILED == 6 and train_command.EXIT_BUSY == 4


def test_the_printed_command_to_start_over_is_a_command_that_works(runs, tmp_path, capsys):
    """The 'start it over' command of a refusal parses back into the run's config, and runs."""
    assert main(["train", "vae", "--data", "digits", "--epochs", "2", "--out", str(runs / "done"), *TINY]) == 5
    error = capsys.readouterr().err.strip()
    command = error.split("start it over: ", 1)[1]
    words = shlex.split(command)
    assert words[:2] == ["elbocheck", "train"] and words[-1] == "--overwrite"
    out = words.index("--out")
    words[out + 1] = str(tmp_path / "again")
    assert main(words[1:]) == 0
    capsys.readouterr()
    saved = json.loads((runs / "done" / "config.json").read_text())
    again = json.loads((tmp_path / "again" / "config.json").read_text())
    assert {k: v for k, v in again.items() if k != "progress"} == {k: v for k, v in saved.items() if k != "progress"}


def test_an_interrupt_exits_130_saying_how_to_continue(tmp_path, monkeypatch, capsys):
    from elbocheck.models.trainer import Trainer

    def interrupted(self, epoch):
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "_train_epoch", interrupted)
    run = tmp_path / "run"
    assert main(["train", "vae", "--data", "digits", "--epochs", "2", "--out", str(run), *TINY]) == 130
    assert capsys.readouterr().err == f"elbocheck train: interrupted; continue with: elbocheck train --resume {run}\n"
    status = json.loads((run / "status.json").read_text())
    assert status["state"] == "interrupted" and status["message"] == "KeyboardInterrupt: "


@pytest.mark.parametrize("flag,calls", [([], [1]), (["--threads", "3"], [3]), (["--threads", "0"], [])])
def test_threads_default_to_one_and_0_keeps_torchs_default(tmp_path, monkeypatch, flag, calls):
    seen = []
    monkeypatch.setattr(torch, "set_num_threads", seen.append)
    assert main(["train", "vae", "--data", "digits", "--epochs", "1", "--out", str(tmp_path / "run"), *TINY,
                 *flag]) == 0
    assert seen == calls
