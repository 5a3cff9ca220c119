import matplotlib.image

from elbocheck import plot_command
from elbocheck.models.plotting import draw_run
from elbocheck.models.trainer import Trainer, TrainConfig
from model_testing import TINY_NETWORK


def _run(tmp_path, model="beta_tcvae", epochs=3):
    config = TrainConfig(model=model, data="digits", epochs=epochs, batch_size=32, device="cpu", progress=False,
                         max_steps_per_epoch=2, data_options={"size": 100},
                         model_options={**TINY_NETWORK, "latent_dim": 2})
    Trainer(config, tmp_path / "run").fit()
    return tmp_path / "run"


def test_every_term_is_drawn_against_epochs_for_every_split(tmp_path):
    run = _run(tmp_path)
    figure = draw_run(run)
    panels = [axis for axis in figure.axes if axis.get_visible()]
    assert [axis.get_title() for axis in panels] == ["reconstruction", "kl_z", "mutual_information",
                                                     "total_correlation", "dimensionwise_kl", "elbo", "objective"]
    for axis in panels:
        assert [line.get_label() for line in axis.get_lines()] == ["train", "validation"]
        assert all(list(line.get_xdata()) == [1, 2, 3] for line in axis.get_lines())


def test_plot_command_writes_a_png(tmp_path, capsys):
    run = _run(tmp_path, model="vae", epochs=2)
    assert plot_command.main([str(run)]) == 0
    image = matplotlib.image.imread(run / "terms.png")
    assert image.shape[0] > 100 and image.shape[1] > 100
    assert "terms.png" in capsys.readouterr().out
    assert plot_command.main([str(run), "--terms", "elbo", "kl_z", "--output", str(tmp_path / "two.png")]) == 0
    assert (tmp_path / "two.png").stat().st_size > 0


def test_plot_command_errors_name_the_problem(tmp_path, capsys):
    assert plot_command.main([str(tmp_path / "missing")]) == 2
    assert "no log at" in capsys.readouterr().err
    run = _run(tmp_path, model="vae", epochs=1)
    assert plot_command.main([str(run), "--terms", "tc"]) == 2
    assert "logged terms: reconstruction, kl_z, elbo, objective" in capsys.readouterr().err
