import json

import pytest

from elbocheck import metrics_command
from elbocheck.models.trainer import TrainConfig, Trainer

TINY_PRESET = {"mig": 200, "factor_vae": {"num_train": 20, "num_eval": 20, "num_variance_estimate": 200,
                                          "batch_size": 16},
               "dci": {"num_train": 120, "num_test": 60}, "sap": {"num_train": 120, "num_test": 60},
               "modularity": {"num_train": 200}}
NETWORK = {"hidden_dim": 16, "num_hidden_layers": 1, "architecture": "mlp"}


@pytest.fixture
def tiny_preset(monkeypatch):
    monkeypatch.setitem(metrics_command.PRESETS, "small", TINY_PRESET)


def _train(tmp_path, model="vae", data="sprites", data_options=None, **options):
    config = TrainConfig(model=model, data=data, epochs=1, batch_size=32, device="cpu", progress=False,
                         max_steps_per_epoch=1, data_options=data_options or {"size": 100},
                         model_options={**NETWORK, **options})
    Trainer(config, tmp_path / f"{model}-{data}").fit()
    return tmp_path / f"{model}-{data}"


def test_every_metric_of_a_sprites_run_with_standard_errors(tmp_path, capsys, tiny_preset):
    run = _train(tmp_path, latent_dim=3)
    assert metrics_command.main([str(run), "--repeats", "2", "--json", "--dci-regressor", "random_forest",
                                 "--source", "data"]) == 0
    (report,) = json.loads(capsys.readouterr().out)
    scores = report["scores"]
    for name in ("mig", "factor_vae_score", "dci.disentanglement", "dci.completeness", "sap", "modularity"):
        assert len(scores[name]["per_repeat"]) == 2 and scores[name]["standard_error"] >= 0
        assert -1e-9 <= scores[name]["value"] <= 1 + 1e-9
    assert scores["dci.informativeness"]["value"] >= 0  # a normalised RMSE with the random-forest regressor
    assert metrics_command.main([str(run), "--repeats", "2", "--metrics", "sap", "dci", "--markdown", "--source",
                                 "grid", "--dci-regressor", "lasso"]) == 0  # sprites rendered from the whole grid
    table = capsys.readouterr().out
    assert table.splitlines()[0] == "| run | DCI D | DCI C | DCI I | SAP |" and f"| {run} | " in table
    assert "DCI I: held-out normalised RMSE (lower is better)" in table


def test_runs_that_cannot_be_scored_exit_2_and_name_the_reason(tmp_path, capsys, tiny_preset):
    digits = _train(tmp_path, data="digits", data_options={"size": 60}, latent_dim=2)
    assert metrics_command.main([str(digits), "--metrics", "sap"]) == 2
    assert "data set 'digits' has no ground-truth factors" in capsys.readouterr().err
    assert metrics_command.main([str(digits), "--source", "grid"]) == 2
    assert "--source grid: only the sprites data set" in capsys.readouterr().err
    labelled = _train(tmp_path, model="condvae", data_options={"size": 100, "label_factor": "shape"}, latent_dim=2)
    assert metrics_command.main([str(labelled), "--metrics", "sap"]) == 2
    assert "model 'condvae' encodes with the label y" in capsys.readouterr().err
    assert metrics_command.main([str(tmp_path / "nothing")]) == 2
    assert "no config.json" in capsys.readouterr().err
