"""The shipped LaTeX examples (seeds 000, 001, 003, 004 with headers) read into the derivations of the engine's
library and get its verdicts."""

from pathlib import Path

import numpy as np
import pytest

from elbocheck.derivations import latex
from elbocheck.derivations.library import cdvae, csvae, condvae, diva, elbo, infovae
from elbocheck.derivations.numeric import Evaluator, InstanceSpace, random_sizes

EXAMPLES = Path(latex.__file__).parents[1] / "examples"
SEEDS = Path(__file__).resolve().parents[4] / "shared" / "seeds"


def checked(name: str):
    result = latex.check_file(EXAMPLES / name)
    assert result.error is None, result.error
    return {r.derivation.name: r for r in result.results}


def verdicts(result):
    return [s.verdict for s in result.steps]


def file_line(name: str, needle: str) -> int:
    """The 1-based line of the file that contains needle (once)."""
    lines = (EXAMPLES / name).read_text(encoding="utf-8").split("\n")
    hits = [i + 1 for i, text in enumerate(lines) if needle in text]
    assert len(hits) == 1, (needle, hits)
    return hits[0]


def same_values(model, pairs, seed=0):
    """Each (a, b) pair of expressions has equal values on random instances of ``model``."""
    rng = np.random.default_rng(seed)
    evaluator = Evaluator(model)
    for _ in range(3):
        space = InstanceSpace(model, random_sizes(model, rng, 3))
        instance = space.instance(space.random_vector(rng))
        for a, b in pairs:
            np.testing.assert_allclose(evaluator.value(a, instance), evaluator.value(b, instance), rtol=1e-9, atol=1e-9)


def test_examples_are_shipped_as_package_data():
    names = sorted(p.name for p in EXAMPLES.iterdir() if p.suffix in (".tex", ".md"))
    assert names == ["bounds_seed000.md", "cdvae_seed004.tex", "condvae_seed001.tex", "infovae_seed003.md"]


# ------------------------------------------------------------------------------------------------ seed 004 (CDVAE)


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seeds are not next to this checkout")
def test_cdvae_example_is_the_seed_verbatim_below_its_header():
    text = (EXAMPLES / "cdvae_seed004.tex").read_text(encoding="utf-8")
    seed = (SEEDS / "004_ac79cb0e0b00ff76.txt").read_text(encoding="utf-8")
    header, _, body = text.partition("\n\n\nDerivation of the Loss")
    assert all(line.startswith("%") for line in header.split("\n"))
    assert "\n\nDerivation of the Loss" + body == seed


def test_cdvae_every_line_judged_with_file_lines_and_tags():
    result = checked("cdvae_seed004.tex")["cdvae"]
    steps = result.steps
    assert [s.label for s in steps] == ["(1)", "(1) -> (2)", "(2) -> (3)", "(3) -> (4)", "(4) -> (5)", "(5) -> (6)",
                                        "(6) -> (7)", "(7) -> (8)"]
    assert verdicts(result) == ["proven"] * 8
    assert [s.relation for s in steps] == ["="] * 6 + [">=", "="]
    expected_lines = [file_line("cdvae_seed004.tex", f"\\quad ({k})$$") for k in range(1, 9)]
    expected_lines[6] = file_line("cdvae_seed004.tex", "\\mathcal{L}_{\\theta, \\phi}")  # (7) starts with its name
    assert [s.line for s in steps] == expected_lines


def test_cdvae_step_3_to_4_needs_the_mean_field_assumption():
    step = checked("cdvae_seed004.tex")["cdvae"].steps[3]
    assert step.label == "(3) -> (4)"
    assert step.verdict == "proven" and step.assumptions == ["q(z_l,z_u|x) = q(z_l|x) q(z_u|x)"]
    assert step.without_assumptions["verdict"] == "refuted"
    assert [len(s.assumptions) for s in checked("cdvae_seed004.tex")["cdvae"].steps].count(1) == 1


def test_cdvae_without_the_assumption_the_step_is_refuted():
    text = (EXAMPLES / "cdvae_seed004.tex").read_text(encoding="utf-8")
    text = "\n".join(line for line in text.split("\n") if not line.startswith("% assume"))
    parsed = latex.parse_text(text, "cdvae.tex")
    result = latex.check_parsed(parsed).results[0]
    assert verdicts(result) == ["proven"] * 3 + ["refuted"] + ["proven"] * 4
    assert result.steps[3].counterexample is not None


def test_cdvae_lines_mean_what_the_library_encodes():
    parsed = latex.parse_file(EXAMPLES / "cdvae_seed004.tex")
    derivation = parsed.derivations[0]
    lines = [derivation.steps[0].rhs] + [s.rhs for s in derivation.steps[1:]]
    same_values(derivation.model, [(lines[k - 1], cdvae.LINES[k]) for k in range(1, 9)]
                + [(derivation.steps[0].lhs, cdvae.log("p(x|c)"))])


# ------------------------------------------------------------------------------------------------ seed 003


def test_infovae_as_written_refuted_where_the_seed_writes_p_theta_x():
    result = checked("infovae_seed003.md")["infovae"]
    library = {d.name: d for d in infovae.build()}
    steps = result.steps
    # J_ELBO =c E_pD[ELBO] (library: infovae_elbo)
    assert steps[0].relation == "= const" and steps[0].verdict == "proven"
    assert steps[0].verdict == library["infovae_elbo"].steps[0].expected
    # the second definition of J_InfoVAE agrees with the first; then the seed's chain as the library encodes it
    assert steps[1].verdict == "proven"
    as_written = steps[2:6]
    assert [s.verdict for s in as_written] == [s.expected for s in library["infovae_seed"].steps]
    assert [s.verdict for s in as_written] == ["proven", "refuted", "refuted", "refuted"]
    for s in as_written[1:]:
        assert s.counterexample is not None
    # the corrected chain: proven, the last step up to a constant (the data entropy)
    corrected = steps[6:]
    assert [s.verdict for s in corrected] == ["proven"] * 5
    assert [s.relation for s in corrected] == ["="] * 4 + ["= const"]
    assert [s.verdict for s in corrected] == [s.expected for s in library["infovae"].steps]
    assert "p_D(x)" in corrected[-1].certificate


def test_infovae_lines_mean_what_the_library_encodes():
    parsed = latex.parse_file(EXAMPLES / "infovae_seed003.md")
    derivation = next(d for d in parsed.derivations if d.name == "infovae")
    steps = derivation.steps
    library = {d.name: d for d in infovae.build()}
    seed, corrected = library["infovae_seed"].steps, library["infovae"].steps
    pairs = [(steps[2].lhs, seed[0].lhs)] + [(steps[2 + k].rhs, seed[k].rhs) for k in range(3)]
    pairs += [(steps[6 + k].rhs, corrected[k].rhs) for k in range(5)]
    same_values(derivation.model, pairs)
    # the readable form of the garbled last line is the library's reading of it
    same_values(derivation.model, [(steps[5].rhs, seed[3].rhs)])


def test_elbo_identity_of_seed_003():
    result = checked("infovae_seed003.md")["elbo"]
    assert verdicts(result) == ["proven"] * 6
    assert [s.relation for s in result.steps] == ["="] * 4 + [">=", "="]
    library = elbo.build()[0]
    assert [s.expected for s in library.steps] == verdicts(result)


def test_infovae_seed_typo_g_is_an_undeclared_density():
    text = (EXAMPLES / "infovae_seed003.md").read_text(encoding="utf-8")
    typo = text.replace(r"\mathbb{E}_{q_{\phi}(z)} [D_{\text{KL}}", r"\mathbb{E}_{g(z)} [D_{\text{KL}}")
    assert typo != text
    parsed = latex.parse_text(typo, "infovae.md", markdown=True)
    assert parsed.error is not None and "undeclared density 'g(...)'" in parsed.error.message
    assert "expected" in parsed.error.message
    line = typo.split("\n").index(next(t for t in typo.split("\n") if t.startswith("$$J_"))) + 1
    assert parsed.error.line == line
    assert parsed.error.column == typo.split("\n")[line - 1].index("g(z)") + 1
    # the steps before the error are kept: the whole ELBO section and J_ELBO's step
    assert [len(d.steps) for d in parsed.derivations] == [6, 1]


# ------------------------------------------------------------------------------------------------ seeds 000, 001


def test_csvae_and_diva_bounds_of_seed_000():
    results = checked("bounds_seed000.md")
    library = {d.name: d for d in csvae.build() + diva.build()}
    assert verdicts(results["csvae"]) == [s.expected for s in library["csvae"].steps] == ["refuted", "proven", "proven"]
    assert verdicts(results["diva_seed"]) == [s.expected for s in library["diva_seed"].steps]
    assert results["csvae"].steps[0].line == file_line("bounds_seed000.md", r"\geq \log \mathbb{E}")
    assert "Jensen gap" in results["csvae"].steps[1].certificate


def test_seed_000_csvae_verbatim_has_one_parenthesis_too_many():
    text = (EXAMPLES / "bounds_seed000.md").read_text(encoding="utf-8")
    typed = r"p_\gamma(\mathbf{w}|\mathbf{y}) \right)$$"
    verbatim = text.replace(typed, typed.replace(") ", ")) "), 1)
    assert verbatim != text
    parsed = latex.parse_text(verbatim, "seed000.md", markdown=True)
    assert parsed.steps == 0 and "unbalanced parentheses" in parsed.error.message
    line = verbatim.split("\n")[parsed.error.line - 1]
    assert line[parsed.error.column - 1] == ")"


def test_condvae_bound_of_seed_001():
    results = checked("condvae_seed001.tex")
    library = {d.name: d for d in condvae.build()}
    assert verdicts(results["condvae"]) == [s.expected for s in library["condvae"].steps] == ["refuted", "proven"]
    assert verdicts(results["condvae_info"]) == [s.expected for s in library["condvae_info"].steps]
    assert [s.label for s in results["condvae"].steps] == ["(1)", "(1')"]
    assert results["condvae"].steps[0].line == file_line("condvae_seed001.tex", r"\quad (1)$$")
    model = results["condvae"].derivation.model
    assert list(model.observed) == ["x", "y"] and list(model.latent) == ["z"]
