import json
import textwrap

import pytest

from elbocheck import audit_command
from elbocheck.cli import main

SMALL = ["--dataset-sizes", "32", "--latent-dims", "3", "--widths", "0.3", "--batch-sizes", "8", "--passes", "6"]

LOSSES = textwrap.dedent('''
    import math
    import torch
    from torch.distributions import Normal


    def _log_densities(z, mean, log_var, dataset_size, shift=0.0):
        m = z.shape[0]
        std = torch.exp(0.5 * log_var)
        pairwise = Normal(mean.unsqueeze(0), std.unsqueeze(0)).log_prob(z.unsqueeze(1))
        log_w = torch.full((m, m), math.log((dataset_size - 1) / (dataset_size * (m - 1))))
        log_w.fill_diagonal_(-math.log(dataset_size))
        log_qz = torch.logsumexp(pairwise.sum(-1) + log_w, 1) + shift
        log_prod_qzi = torch.logsumexp(pairwise + log_w.unsqueeze(-1), 1).sum(-1)
        return Normal(mean, std).log_prob(z).sum(-1), log_qz, log_prod_qzi, Normal(0.0, 1.0).log_prob(z).sum(-1)


    def good(z, mean, log_var, dataset_size):
        log_q_zCx, log_qz, log_prod_qzi, log_pz = _log_densities(z, mean, log_var, dataset_size)
        return {"mi_loss": log_q_zCx - log_qz, "tc_loss": log_qz - log_prod_qzi, "loss": log_qz.sum()}


    def shifted(z, mean, log_var, dataset_size):
        log_q_zCx, log_qz, log_prod_qzi, log_pz = _log_densities(z, mean, log_var, dataset_size,
                                                                 shift=-math.log(dataset_size))
        return (log_q_zCx - log_qz).mean(), (log_qz - log_prod_qzi).mean()


    def fails(z, mean, log_var, dataset_size):
        if z.shape[0] > 8:
            raise MemoryError("the batch is too large")
        return good(z, mean, log_var, dataset_size)
''')


@pytest.fixture
def losses_file(tmp_path):
    path = tmp_path / "my_losses.py"
    path.write_text(LOSSES)
    return path


def test_a_correct_loss_passes_with_exit_0(losses_file, capsys):
    assert main(["audit", f"{losses_file}:good", *SMALL]) == 0
    captured = capsys.readouterr()
    assert "mutual_information: " in captured.out and "WRONG" not in captured.out
    assert "not audited: loss" in captured.err


def test_a_shifted_normaliser_is_wrong_with_exit_1(losses_file, capsys):
    status = main(["audit", f"{losses_file}:shifted", "--names", "mutual_information", "total_correlation",
                   *SMALL, "--json"])
    assert status == 1
    report = json.loads(capsys.readouterr().out)
    assert report["verdicts"]["mutual_information"]["verdict"] == "wrong"
    assert report["verdicts"]["total_correlation"]["verdict"] == "wrong"
    assert report["grid"]["dataset_sizes"] == [32] and report["function"].endswith("my_losses.py:shifted")


def test_the_module_form_imports_from_the_current_directory(losses_file, capsys, monkeypatch):
    monkeypatch.chdir(losses_file.parent)
    monkeypatch.syspath_prepend(str(losses_file.parent))
    assert audit_command.main(["my_losses:good", *SMALL, "--brief"]) == 0
    assert "M=N" not in capsys.readouterr().out  # --brief: no per-setting tables


@pytest.mark.parametrize(("arguments", "message"), [
    (["nowhere_module_xyz:f"], "cannot import module 'nowhere_module_xyz' (ModuleNotFoundError"),
    (["{file}:missing"], "has no attribute 'missing'"),
    (["{file}"], "expected 'module:function' or 'file.py:function'"),
    (["{dir}/absent.py:f"], "no file"),
    (["{file}:shifted"], "returned 2 unnamed value(s)"),
    (["{file}:good", "--names", "kl", "--map", "a=kl"], "--names (a tuple's entries) and --map"),
    (["{file}:good", "--option", "novalue"], "--option: expected KEY=VALUE"),
    (["{file}:good", "--widths", "2"], "must lie in (0, 1)"),
    (["{file}:good", "--map", "mi_loss=entropy"], "unknown quantity 'entropy'"),
])
def test_usage_errors_exit_2_with_one_line(losses_file, capsys, arguments, message):
    arguments = [a.format(file=losses_file, dir=losses_file.parent) for a in arguments]
    assert main(["audit", *SMALL, *arguments]) == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert error.startswith("elbocheck audit: error: ") and message in error


def test_a_function_failing_during_the_audit_exits_3(losses_file, capsys):
    assert main(["audit", f"{losses_file}:fails", *SMALL]) == 3
    captured = capsys.readouterr()
    assert "fails raised MemoryError: the batch is too large (at batch size 32" in captured.err


def test_a_function_failing_after_a_setting_keeps_its_audit(losses_file, capsys):
    arguments = ["audit", f"{losses_file}:fails", "--dataset-sizes", "8", "32", "--latent-dims", "2",
                 "--widths", "0.3", "--batch-sizes", "4", "--passes", "4"]
    assert main(arguments) == 3
    captured = capsys.readouterr()
    assert "N=8 D=2 width=0.3" in captured.out and "(the settings completed before the error)" in captured.out
