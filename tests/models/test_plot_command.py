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


def test_output_names_the_file_actually_written(tmp_path, capsys):
    # issue 12: `plot D --output SOMEDIR` wrote SOMEDIR.png but printed "wrote SOMEDIR"
    run = _run(tmp_path, model="vae", epochs=1)
    assert plot_command.main([str(run), "--output", str(tmp_path / "SOMEDIR")]) == 0
    said = capsys.readouterr().out.strip()
    assert said == f"wrote {tmp_path / 'SOMEDIR.png'}" and (tmp_path / "SOMEDIR.png").is_file()
    assert not (tmp_path / "SOMEDIR").exists()
    (tmp_path / "figures").mkdir()
    assert plot_command.main([str(run), "-o", str(tmp_path / "figures")]) == 0  # an existing directory
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'figures' / 'terms.png'}"
    assert plot_command.main([str(run), "-o", str(tmp_path / "terms.pdf")]) == 0  # a format matplotlib writes
    assert capsys.readouterr().out.strip() == f"wrote {tmp_path / 'terms.pdf'}"
    assert (tmp_path / "terms.pdf").read_bytes().startswith(b"%PDF")


def test_pictures_of_a_run_go_into_its_directory(tmp_path, capsys):
    config = TrainConfig(model="cdvae", data="digits", epochs=1, batch_size=32, device="cpu", progress=False,
                         max_steps_per_epoch=2, data_options={"size": 100},
                         model_options={**TINY_NETWORK, "zl_dim": 2, "zu_dim": 2})
    Trainer(config, tmp_path / "run").fit()
    run = tmp_path / "run"
    assert plot_command.main([str(run), "--what", "all"]) == 0
    names = ["terms", "traversals", "reconstructions", "samples", "swaps"]
    assert capsys.readouterr().out.split() == [word for name in names for word in ("wrote", str(run / f"{name}.png"))]
    for name in names:
        assert matplotlib.image.imread(run / f"{name}.png").shape[0] > 100
    assert plot_command.main([str(run), "--what", "traversals", "swaps", "-o", str(tmp_path / "pictures")]) == 0
    assert sorted(p.name for p in (tmp_path / "pictures").iterdir()) == ["swaps.png", "traversals.png"]
    capsys.readouterr()
    assert plot_command.main([str(run), "--what", "terms", "samples", "-o", str(tmp_path / "one.png")]) == 2
    assert "several figures need a directory" in capsys.readouterr().err


def test_picture_errors_are_one_line_with_exit_2(tmp_path, capsys):
    run = _run(tmp_path, model="vae", epochs=1)
    assert plot_command.main([str(run), "--what", "swaps"]) == 2
    assert "swaps: model VAE has no class label to swap" in capsys.readouterr().err
    (run / "checkpoint.pt").write_bytes(b"garbage")
    assert plot_command.main([str(run), "--what", "traversals"]) == 2
    assert "checkpoint.pt: not a readable checkpoint" in capsys.readouterr().err
    (run / "checkpoint.pt").unlink()
    assert plot_command.main([str(run), "--what", "terms", "samples"]) == 2  # the terms figure is still written
    captured = capsys.readouterr()
    assert "wrote" in captured.out and "has not completed an epoch" in captured.err
    assert plot_command.main([str(tmp_path), "--what", "samples"]) == 2
    assert "no config.json in" in capsys.readouterr().err
