"""Notation of the papers' derivations (issue 10; derivations/corpus/papers/README.md, "Notation in the math"): each
construct in a step whose truth is decided here by the mathematics (the comment beside it), or the error that says
why it cannot be read."""

import pytest

from elbocheck.derivations.latex import check_parsed, parse_text

VAE = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n\n"
ELBO = r"\mathbb{E}_{q_\phi(z|x)}\left[\log \frac{p_\theta(x, z)}{q_\phi(z|x)}\right]"


def judged(text, name="notation.tex"):
    parsed = parse_text(text, name)
    assert parsed.error is None, parsed.error.format()
    return check_parsed(parsed).step_results


def verdicts(text):
    return [r.verdict for r in judged(text)]


def error(text, name="notation.tex") -> str:
    parsed = parse_text(text, name)
    assert parsed.error is not None
    return parsed.error.format()


def displays(*lines) -> str:
    return "".join(f"$${line}$$\n\n" for line in lines)


# ------------------------------------------------------------------------------------------------ names

def test_a_name_defined_in_the_middle_of_a_line_and_used_later():
    results = judged(VAE + displays(
        rf"\log p(x) \geq \mathcal{{L}}(\theta, \phi; x) = {ELBO} \tag{{1}}",  # true: the ELBO is a lower bound
        r"\log p(x) = D_{KL}(q_\phi(z|x) \| p_\theta(z|x)) + \mathcal{L}(\theta, \phi; x) \tag{2}",  # true
        r"\log p(x) = \mathcal{L}(\theta, \phi; x) \tag{3}"))  # false: the KL to the posterior is missing
    assert [(r.label, r.relation, r.verdict) for r in results] == [
        ("(1), relation 1", ">=", "proven"), ("(2)", "=", "proven"), ("(3)", "=", "refuted")]


def test_a_negated_name_at_the_end_of_a_line():
    results = judged(VAE + displays(
        rf"\log p(x) \geq {ELBO} = -\mathcal{{L}}(x) \tag{{6}}",  # true
        r"\log p(x) + \mathcal{L}(x) \geq 0 \tag{7}",  # true: L is minus the ELBO
        r"\log p(x) + \mathcal{L}(x) \leq 0 \tag{8}"))  # false
    assert [r.verdict for r in results] == ["proven", "proven", "refuted"]


def test_names_as_words_and_single_letters_defined_with_equiv():
    results = judged(VAE + displays(
        rf"\mathrm{{ELBO}}(q) = {ELBO}",
        r"R \equiv \mathbb{E}_{p_{\mathcal D}(x)}\left[D_{KL}(q_\phi(z|x) \| p(z))\right]",
        r"\text{ELBO} \leq \log p(x)",  # true: the same name with and without its argument
        r"R \geq 0",  # true: an average KL
        r"R \leq 0"))  # false
    assert [r.verdict for r in results] == ["proven", "proven", "refuted"]


def test_a_kl_written_with_bare_letters_is_a_name():
    header = "% elbocheck model vi: p(Z) p(X|Z) q(Z)\n\n"
    results = judged(header + displays(
        r"\mathrm{KL}(q \| p) = -\int q(\mathbf{Z}) \ln\left\{\frac{p(\mathbf{Z}|\mathbf{X})}{q(\mathbf{Z})}\right\} "
        r"\mathrm{d}\mathbf{Z}",
        r"\mathrm{KL}(q \| p) \geq 0",  # true
        r"\mathrm{KL}(q \| p) = D_{KL}(q(Z) \| p(Z))"))  # false: the KL to the posterior, not to the prior
    assert [r.verdict for r in results] == ["proven", "refuted"]


def test_a_name_with_a_symbolic_index_is_a_family():
    header = "% elbocheck model iwae: p(h) p(x|h) q(h|x)\n% samples: h_i ~ q(h|x), i = 1..k\n\n"
    results = judged(header + displays(
        r"\mathcal{L}_k = \mathbb{E}_{h_1, \ldots, h_k \sim q(h|x)}\left[\log \frac{1}{k}\sum_{i=1}^{k} "
        r"\frac{p(x, h_i)}{q(h_i|x)}\right]",
        # true: one sample is the ELBO (L_1, the family at k = 1)
        r"\mathcal{L}_1 = \mathbb{E}_{q(h|x)}\left[\log \frac{p(x,h)}{q(h|x)}\right]",
        # true for every k: Jensen; the text's k + 1 samples are checked for every number of samples
        r"\log p(x) \geq \mathcal{L}_{k+1}",
        # false (the bound is below log p(x)), but a counterexample with one sample does not refute a claim about
        # k + 1 >= 2 samples: reported undecided
        r"\mathcal{L}_{k+1} \geq \log p(x)",
        # true (Theorem 1), but two numbers of samples in one step are beyond the engine: not checked
        r"\mathcal{L}_{k+1} \geq \mathcal{L}_k"))
    assert [r.verdict for r in results] == ["proven", "proven", "undecided", "undecided"]
    assert "a counterexample with fewer than 2 samples would not refute it" in results[2].reason
    assert results[3].reason.startswith("not checked: the step compares expectations over k, k + 1 samples")


def test_renyi_divergence_and_a_limit_in_its_order():
    header = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n% coefficients: 0 < alpha < 1\n\n"
    bound = r"\frac{1}{1-\alpha} \log \mathbb{E}_{q(z|x)}\left[\left(\frac{p(x,z)}{q(z|x)}\right)^{1-\alpha}\right]"
    results = judged(header + displays(
        # true: Renyi's divergence, (1/(alpha-1)) log int q^alpha p^(1-alpha)
        r"D_\alpha[q(z|x) \| p(z|x)] = \frac{1}{\alpha - 1} \log \int q(z|x)^\alpha p(z|x)^{1-\alpha} dz",
        rf"\lim_{{\alpha \to 1}} {bound} = {ELBO}",  # true: the limit alpha -> 1 is the ELBO
        rf"{bound} \geq {ELBO}",  # true for 0 < alpha < 1 (Jensen)
        rf"{bound} \leq {ELBO}"))  # false
    assert [r.verdict for r in results] == ["proven", "proven", "proven", "refuted"]


def test_renyi_divergence_needs_an_order_other_than_one():
    header = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n% coefficients: alpha real\n\n"
    assert "contains 1" in error(header + r"$$D_\alpha[q(z|x) \| p(z|x)] \geq 0$$" + "\n")


def test_a_limit_of_another_shape_is_an_error():
    header = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n% coefficients: 0 < alpha < 1\n\n"
    message = error(header + r"$$\lim_{\alpha \to 1} \mathbb{E}_{q(z|x)}[\alpha \log p(x|z)] = 0$$" + "\n")
    assert "only terms free of alpha" in message


# ------------------------------------------------------------------------------------------------ relations

def test_implies_holds_two_statements():
    results = judged(VAE + displays(
        rf"D_{{KL}}(q(z|x) \| p(z|x)) \geq 0 \implies \log p(x) \geq {ELBO}",  # both true
        rf"D_{{KL}}(q(z|x) \| p(z|x)) \geq 0 \implies \log p(x) \leq {ELBO}"))  # the second is false
    assert [(r.label, r.verdict) for r in results] == [
        ("line 3, relation 1", "proven"), ("line 3, relation 2", "proven"),
        ("line 5, relation 1", "proven"), ("line 5, relation 2", "undecided")]
    assert "as following from" in results[3].reason  # the statement is checked as one of its own: not refuted


# ------------------------------------------------------------------------------------------------ measures, sums

def test_differentials_first_and_integrals_without_a_density_of_the_integrated_variables():
    header = "% elbocheck model adgm: p(z) p_theta(x|z) p_theta(a|z,x) q_phi(a|x) q_phi(z|a,x)\n\n"
    assert verdicts(header + displays(
        r"\log p(x) = \log \int_{\mathbf{a}} \int_{\mathbf{z}} p(\mathbf{a}, \mathbf{x}, \mathbf{z})\, d\mathbf{a}\, "
        r"d\mathbf{z}",  # true: a marginal
        r"\int da\, dz\, q(a, z|x) \log \frac{p(a,x,z)}{q(a,z|x)} \leq \log p(x)",  # true: the ELBO
        r"\log \int dz\, p(x, z) = \log p(x|z)")) == ["proven", "proven", "refuted"]  # false: p(x), not p(x|z)


def test_densities_as_values():
    header = "% elbocheck model chain: p(z) p(x|z) p(y|x) q(z|x,y)\n\n"
    assert verdicts(header + displays(
        r"p(y|z) = \int dx\, p(y|x) p(x|z)",  # true: y depends on z through x only
        r"p(y|z) = \int dx\, \frac{p(y|x) p(z|x) p(x)}{p(z)}",  # true: Bayes
        r"p(y|z) = \int dx\, p(y|x) p(x)")) == ["proven", "proven", "refuted"]  # false: that is p(y)


def test_sums_over_the_values_of_a_discrete_variable():
    header = "% elbocheck model rws: p(h) p(x|h) q(h|x)\n% discrete: h\n\n"
    assert verdicts(header + displays(
        r"p(\mathbf{x}) = \sum_{\mathbf{h}} q(\mathbf{h}|\mathbf{x}) \frac{p(\mathbf{x}, \mathbf{h})}{q(\mathbf{h}|\mathbf{x})}",
        r"p(x) = \sum_h p(x, h)",  # both true
        r"p(x) = \sum_h q(h|x) p(x, h)")) == ["proven", "proven", "refuted"]  # false: E_q[p(x,h)] is not p(x)


def test_a_generative_measure_without_arguments():
    # true: E_{p_theta}[log p(z)] is the expectation under the model's p(z); false: under the encoder
    assert verdicts(VAE + displays(r"\mathbb{E}_{p_\theta}[\log p_\theta(z)] = -\mathbb{H}[p(z)]",
                                   r"\mathbb{E}_{p_\theta}[\log p_\theta(z)] = \mathbb{E}_{q(z|x)}[\log p(z)]")) == \
        ["proven", "refuted"]


def test_the_other_components_in_a_chain_measure():
    header = "% elbocheck model tc: prod_j p(z_j) p_theta(x|z) q_phi(z|x)\n% vectors: z = J\n\n"
    chain = r"\sum_j \mathbb{E}_{q(z_j)q(z_{\setminus j}|z_j)}\left[\log \frac{q(z_j)}{p(z_j)}\right]"
    assert verdicts(header + displays(rf"{chain} = \sum_j D_{{KL}}(q(z_j) \| p(z_j))",  # true
                                      rf"{chain} = D_{{KL}}(q(z) \| p(z))")) == ["proven", "refuted"]  # false: no TC
    message = error(header + r"$$\log q(z_{\setminus j}) \leq 0$$" + "\n")
    assert "are read only in a measure" in message


def test_information_terms_of_the_papers():
    header = "% elbocheck model m2: p(y) p(z) p_theta(x|y,z) q_phi(z|x,y) q_phi(y|x)\n% discrete: y\n\n"
    assert verdicts(header + displays(
        r"\mathbb{I}[x; y] = I(x, y)",  # true: the same mutual information
        r"I_{q_\phi}(x; z) = \mathcal{H}(z) - H_q(z|x)",  # true
        r"\mathbb{I}[x; y] \leq \mathbb{E}_{p_{\mathcal D}(x)}[\mathcal{H}(q_\phi(y|x))]",  # false: I = H(y) - H(y|x)
    )) == ["proven", "proven", "refuted"]


def test_a_kl_with_a_comma_and_placeholders():
    header = "% elbocheck model gan: p: P(c) P(x|c); aux: Q(c|x)\n% letters: P = p\n\n"
    assert verdicts(header + displays(
        r"D_{KL}(P(\cdot|x) \| Q(\cdot|x)) = KL[P(c|x), Q(c|x)]",  # true: the same divergence
        r"D_{KL}(P(\cdot|x) \| Q(\cdot|x)) = 0")) == ["proven", "refuted"]  # false


def test_a_primed_copy_is_bound_by_its_measure_only():
    header = "% elbocheck model gan: p: P(c) P(x|c); aux: Q(c|x)\n% letters: P = p\n\n"
    # true: the entropy of c given x, written with a bound copy c'
    assert verdicts(header + displays(
        r"\mathbb{E}_{P(x)}\left[\mathbb{E}_{c' \sim P(c|x)}[\log P(c'|x)]\right] = -H(c|x)")) == ["proven"]
    assert "drawn by an enclosing measure" in error(header + r"$$\log P(c'|x) \leq 0$$" + "\n")


def test_braces_big_delimiters_and_textstyle():
    header = "% elbocheck model vi: p(Z) p(X|Z) q(Z)\n\n"
    # true: the ELBO written with \ln\left\{ \right\}, \Big[ \Big] and \textstyle
    assert verdicts(header + displays(
        r"\ln p(\mathbf{X}) \geq \int q(\mathbf{Z}) \ln\left\{\frac{p(\mathbf{X}, \mathbf{Z})}{q(\mathbf{Z})}\right\} "
        r"\mathrm{d}\mathbf{Z} = \textstyle \mathbb{E}_{q(Z)}\Big[\ln p(X, Z) - \ln q(Z)\Big]")) == ["proven", "proven"]


def test_a_calligraphic_variable():
    header = "% elbocheck model renyi: p(theta) p(D|theta) q(theta)\n% latent: theta\n\n"
    # true: the evidence decomposition with the data written \mathcal{D}
    assert verdicts(header + displays(
        r"\log p(\mathcal{D}) = \mathrm{KL}[q(\theta) \| p(\theta|\mathcal{D})] + \mathbb{E}_q\left[\log "
        r"\frac{p(\theta, \mathcal{D})}{q(\theta)}\right]")) == ["proven"]


@pytest.mark.parametrize("line, message", [
    (r"\log k \geq 0", "'k' alone has no value"),
    (r"\mathbb{E}_{x \sim G(z)}[\log p(x)] = 0", "undeclared density"),
])
def test_letters_outside_densities_are_errors(line, message):
    assert message in error(VAE + f"$${line}$$\n")
