import importlib
import json

from elbocheck import cli, train_command
from elbocheck.models.run_log import read_log_rows

TINY_ARGS = ["--model-option", "hidden_dim=8", "--model-option", "architecture=mlp", "--device", "cpu",
             "--no-progress", "--batch-size", "32", "--max-steps-per-epoch", "2"]


def test_subcommands_are_registered_in_the_cli():
    for name, module_name in (("train", "elbocheck.train_command"), ("plot", "elbocheck.plot_command")):
        assert cli.SUBCOMMANDS[name][0] == module_name
        module = importlib.import_module(module_name)
        assert callable(module.add_arguments) and callable(module.run)


def test_train_then_resume_with_more_epochs(tmp_path, capsys):
    run = tmp_path / "run"
    code = train_command.main(["beta_vae", "--data", "digits", "--data-option", "size=100", "--epochs", "2",
                               "--model-option", "beta=2", "--out", str(run), *TINY_ARGS])
    assert code == 0, capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["model_options"] == {"beta": 2, "hidden_dim": 8, "architecture": "mlp"}
    assert config["data_options"] == {"size": 100}
    assert train_command.main(["--resume", str(run), "--epochs", "3", "--no-progress"]) == 0
    assert [row["epoch"] for row in read_log_rows(run) if row["split"] == "train"] == [1, 2, 3]
    assert "done: 3 epochs" in capsys.readouterr().out


def test_bad_arguments_get_a_message_with_the_valid_choices(tmp_path, capsys):
    def error_of(argv):
        assert train_command.main(argv) == 2
        return capsys.readouterr().err

    assert "valid choices: vae, beta_vae, beta_tcvae, infovae, condvae, condvae_info, csvae, diva, cdvae" in error_of(
        ["wae", "--data", "digits"])
    assert "--data: a data set is required; valid choices: digits, rotated_digits, swiss_roll" in error_of(["vae"])
    assert "MODEL: a model name is required" in error_of(["--data", "digits"])
    message = error_of(["condvae", "--data", "sprites", "--data-option", "size=8", "--out", str(tmp_path / "a")])
    assert "needs class labels y, but data set 'sprites' has none" in message
    assert "sprites (label_factor=...)" in message
    assert "valid options: likelihood, size, seed" in error_of(["vae", "--data", "digits", "--data-option", "n=3"])
    assert "expected KEY=VALUE" in error_of(["vae", "--data", "digits", "--model-option", "beta"])
    assert "mnist' needs option(s) path" in error_of(["vae", "--data", "mnist", "--out", str(tmp_path / "b")])


def test_resume_refuses_to_change_what_defines_the_run(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_command.main(["vae", "--data", "digits", "--data-option", "size=100", "--epochs", "1",
                               "--out", str(run), *TINY_ARGS]) == 0
    capsys.readouterr()
    assert train_command.main(["--resume", str(run), "--seed", "1"]) == 2
    assert "--seed cannot change when resuming" in capsys.readouterr().err
    assert train_command.main(["beta_vae", "--resume", str(run)]) == 2
    assert "trains 'vae', not 'beta_vae'" in capsys.readouterr().err
    assert train_command.main(["vae", "--data", "digits", "--out", str(run), "--no-progress"]) == 5
    assert "holds another run (vae on digits (seed 0): 1 of 1 epochs, completed)" in capsys.readouterr().err


def test_the_learning_rate_may_change_on_resume_and_the_change_is_recorded(tmp_path, capsys):
    run = tmp_path / "run"
    assert train_command.main(["vae", "--data", "digits", "--data-option", "size=100", "--epochs", "1",
                               "--out", str(run), *TINY_ARGS]) == 0
    assert train_command.main(["--resume", str(run), "--epochs", "2", "--lr", "1e-4", "--no-progress"]) == 0
    assert "lr changes from 0.001 to 0.0001 after epoch 1" in capsys.readouterr().err
    config = json.loads((run / "config.json").read_text())
    assert config["lr"] == 1e-4
    assert config["changes"] == [{"after_epoch": 1, "field": "lr", "from": 0.001, "to": 0.0001}]
    import torch
    state = torch.load(run / "checkpoint.pt", weights_only=True)
    assert state["epoch"] == 2 and state["optimizer_states"]["model"]["param_groups"][0]["lr"] == 1e-4


def test_list_shows_models_terms_and_data_sets(capsys):
    assert train_command.main(["--list"]) == 0
    out = capsys.readouterr().out
    assert "csvae" in out and "adversary_entropy" in out and "rotated_digits" in out and "held_out_domain" in out


def test_option_values_are_parsed_as_literals():
    assert train_command.parse_option("beta=4", "--model-option") == ("beta", 4)
    assert train_command.parse_option("use_adversary=false", "--model-option") == ("use_adversary", False)
    assert train_command.parse_option("estimator=mss", "--model-option") == ("estimator", "mss")
    assert train_command.parse_option("lambda-=1e3", "--model-option") == ("lambda_", 1000.0)
    assert train_command.parse_option("held_out_domain=None", "--data-option") == ("held_out_domain", None)


def test_the_elbocheck_command_dispatches_to_train_and_plot(tmp_path, capsys):
    assert cli.main(["train", "--list"]) == 0
    assert "beta_tcvae" in capsys.readouterr().out
    assert cli.main(["plot", str(tmp_path / "missing")]) == 2
    assert "no log at" in capsys.readouterr().err
