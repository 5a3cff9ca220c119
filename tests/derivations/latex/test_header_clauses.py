"""Header clauses of the papers' derivations (issue 10; derivations/corpus/papers/README.md): each is read into the
model docs/semantics.md gives it, checked on a step whose truth is decided here by the mathematics (the comment
beside each case), or rejected with an error that names the place and says why."""

import pytest

from elbocheck.derivations.latex import LatexError, check_parsed, parse_text

VAE = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n"


def judged(text, name="clauses.tex"):
    parsed = parse_text(text, name)
    assert parsed.error is None, parsed.error.format()
    return check_parsed(parsed).step_results


def verdicts(text):
    return [r.verdict for r in judged(text)]


def header_error(text, name="clauses.tex") -> str:
    with pytest.raises(LatexError) as caught:
        parse_text(text, name)
    assert caught.value.fatal
    return caught.value.format()


# ------------------------------------------------------------------------------------------------ vectors: z = J

TC = "% elbocheck model tc: prod_j p(z_j) p_theta(x|z) q_phi(z|x)\n% vectors: z = J\n\n"


def test_a_vector_with_a_symbolic_size():
    # true for a factorized prior: KL(q(z)||p(z)) = TC + sum_j KL(q(z_j)||p(z_j))
    true = r"D_{KL}(q(z)\|p(z)) = D_{KL}(q(z) \| \prod_j q(z_j)) + \sum_{j=1}^{J} D_{KL}(q(z_j)\|p(z_j))"
    # false: the total correlation is missing (it is positive when q(z) does not factorize)
    false = r"D_{KL}(q(z)\|p(z)) = \sum_{j=1}^{J} D_{KL}(q(z_j)\|p(z_j))"
    assert verdicts(TC + f"$${true}$$\n\n$${false}$$\n") == ["proven", "refuted"]


def test_a_sum_to_another_symbol_than_the_size_is_an_error():
    parsed = parse_text(TC + r"$$\sum_{j=1}^{K} D_{KL}(q(z_j)\|p(z_j)) \geq 0$$" + "\n", "size.tex")
    assert "z has J components, not K" in parsed.error.format()


def test_components_of_a_numeric_vector_as_factors():
    header = ("% elbocheck model lvae: p_theta(z_2) p_theta(z_1|z_2) p_theta(x|z_1) q_phi(z_2|x) q_phi(z_1|z_2,x)\n"
              "% vectors: z = 2\n\n")
    # true: the ELBO with z = (z_1, z_2); false: the decoder does not see z_2, so p(x|z) = p(x|z_1), not p(x|z_2)
    true = r"\log p(x) \geq \mathbb{E}_{q_\phi(z|x)}\left[\log \frac{p_\theta(x, z)}{q_\phi(z|x)}\right]"
    false = r"\mathbb{E}_{q(z|x)}[\log p(x|z)] = \mathbb{E}_{q(z|x)}[\log p(x|z_2)]"
    assert verdicts(header + f"$${true}$$\n\n$${false}$$\n") == ["proven", "refuted"]


def test_factors_over_prefixes_are_rejected_with_why():
    message = header_error("% elbocheck model nvae: prod_l p(z_l|z_{<l}) p(x|z) q(z|x)\n% vectors: z = L\n\n$$0=0$$\n")
    assert "prefix of components" in message and "no order" in message


# ------------------------------------------------------------------------------------------------ samples

IWAE = "% elbocheck model iwae: p(h) p(x|h) q(h|x)\n% samples: h_i ~ q(h|x), i = 1..k\n\n"
BOUND = r"\mathbb{E}_{h_1, \ldots, h_k \sim q(h|x)}\left[\log \frac{1}{k} \sum_{i=1}^{k} \frac{p(x, h_i)}{q(h_i|x)}\right]"


def test_importance_samples_with_a_symbolic_count():
    # true: log p(x) >= L_k (Jensen) and L_k >= ELBO (the log of a mean >= the mean of the logs)
    elbo = r"\mathbb{E}_{q(h|x)}\left[\log \frac{p(x, h)}{q(h|x)}\right]"
    # false: log p(x) <= L_k fails whenever q(h|x) is not the posterior (the Jensen gap is positive)
    text = IWAE + f"$$\\log p(x) \\geq {BOUND}$$\n\n$${BOUND} \\geq {elbo}$$\n\n$$\\log p(x) \\leq {BOUND}$$\n"
    assert verdicts(text) == ["proven", "proven", "refuted"]


def test_a_numeric_number_of_samples_and_sums_over_some_of_them():
    header = "% elbocheck model iwae3: p(h) p(x|h) q(h|x)\n% samples: h_i ~ q(h|x), i = 1..3\n\n"
    l3 = r"\mathbb{E}_{h_1, h_2, h_3 \sim q(h|x)}\left[\log \frac{1}{3} \sum_{i=1}^{3} \frac{p(x,h_i)}{q(h_i|x)}\right]"
    l2 = r"\mathbb{E}_{h_1, h_2}\left[\log \frac{1}{2} \sum_{i=1}^{2} \frac{p(x,h_i)}{q(h_i|x)}\right]"
    # true: L_3 >= L_2 (Burda et al. 2016, Theorem 1); false: L_2 >= L_3 (the gap is positive in general)
    assert verdicts(header + f"$${l3} \\geq {l2}$$\n\n$${l2} \\geq {l3}$$\n") == ["proven", "refuted"]


def test_a_sample_density_other_than_the_encoder_is_an_error():
    message = header_error("% elbocheck model iwae: p(h) p(x|h) q(h|x)\n% samples: h_i ~ q(h), i = 1..K\n\n"
                           "$$\\log p(x) = \\log p(x)$$\n")
    assert "clauses.tex:2:" in message and "expected q(h|x)" in message


# ------------------------------------------------------------------------------------------------ discrete

M2 = "% elbocheck model m2: p(y) p(z) p_theta(x|y,z) q_phi(z|x,y) q_phi(y|x)\n% discrete: y\n\n"


def test_discrete_variables_have_non_negative_entropies():
    # true: y takes finitely many values; false: the entropy of a table that is not a point mass is positive
    lines = [r"\mathcal{H}(q_\phi(y|x)) \geq 0", r"\mathbb{H}[q_\phi(y|x)] \leq 0",
             r"\sum_y q_\phi(y|x) \log q_\phi(y|x) = -\mathcal{H}(q_\phi(y|x))"]  # true: the sum is the expectation
    assert verdicts(M2 + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "refuted", "proven"]


def test_a_sum_over_a_variable_that_is_not_discrete_is_an_error():
    parsed = parse_text(M2 + r"$$\sum_z q(z|x,y) \log p(z) = \mathbb{E}_{q(z|x,y)}[\log p(z)]$$" + "\n", "sum.tex")
    assert "which is not declared discrete" in parsed.error.format()


def test_a_number_of_values_has_no_meaning():
    message = header_error(VAE + "% discrete: z = 1..K\n\n$$0 = 0$$\n")
    assert "clauses.tex:2:" in message and "number of values has no meaning" in message


# ------------------------------------------------------------------------------------------------ datapoints

def test_data_points_with_a_superscript_index():
    header = VAE + "% datapoints: x^{(i)}, i = 1..N\n\n"
    # true: the average over the N points is the expectation under the empirical distribution
    line = r"\frac{1}{N}\sum_{i=1}^{N} \log p(x^{(i)}) = \mathbb{E}_{p_{\mathcal{D}}(x)}[\log p(x)]"
    assert verdicts(header + f"$${line}$$\n") == ["proven"]


def test_data_points_with_their_index_as_the_data_variable():
    header = "% elbocheck model surgery: p(z) p(x|z) q(z|x)\n% datapoints: x_n, n = 1..N\n\n"
    lines = [
        # true: the index-code MI is the data entropy (log N for N distinct points) minus E_q(z) H[q(n|z)]
        r"\mathbb{I}[n; z] = \log N - \mathbb{E}_{q(z)}\left[\mathbb{H}[q(n|z)]\right]",
        # true: the average KL is the marginal KL plus the index-code MI
        r"\frac{1}{N}\sum_{n=1}^{N}\mathrm{KL}(q(z_n|x_n) \| p(z_n)) = \mathrm{KL}(q(z) \| p(z)) + \mathbb{I}[n; z]",
        # false (an encoder that ignores n has I = 0 < log N); the engine's counterexamples may have any data
        # distribution, not N equally weighted points: the refutation is reported undecided
        r"\mathbb{I}[n; z] = \log N",
    ]
    results = judged(header + "".join(f"$${line}$$\n\n" for line in lines))
    assert [r.verdict for r in results] == ["proven", "proven", "undecided"]
    assert "empirical distribution of N distinct points" in results[2].reason


# ------------------------------------------------------------------------------------------------ data names

KL_SPLIT = r"\mathbb{E}_{p(x)}\left[D_{KL}(q(z|x)\|p(z))\right] = I(x; z) + D_{KL}(q(z)\|p(z))"


def test_the_data_distribution_under_the_name_the_text_gives_it():
    # with data: p(x) the line is the ELBO surgery identity (true); without it p(x) is the model's marginal, and the
    # identity fails (it holds for the data distribution, the x-marginal of the inference joint)
    assert verdicts(VAE + "% data: p(x)\n\n" + f"$${KL_SPLIT}$$\n") == ["proven"]
    assert verdicts(VAE + "\n" + f"$${KL_SPLIT}$$\n") == ["refuted"]


@pytest.mark.parametrize("data, written", [("q_D(x)", r"q_{\mathcal{D}}(x)"), ("p^*(x)", r"p^*(x)")])
def test_other_names_of_the_data_distribution(data, written):
    # true: the expected log density of the data distribution is minus its entropy
    line = rf"\mathbb{{E}}_{{{written}}}[\log {written}] = -\mathbb{{H}}[p_{{\mathcal{{D}}}}(x)]"
    assert verdicts(VAE + f"% data: {data}\n\n$${line}$$\n") == ["proven"]


# ------------------------------------------------------------------------------------------------ measures

def test_the_measure_of_a_bare_expectation():
    header = VAE + "% measures: E = q_\\phi(z|x)\n% measures: E_x = p_{\\mathcal D}(x)\n\n"
    lines = [r"\mathbb{E}[\log p(x|z)] = \mathbb{E}_{q(z|x)}[\log p(x|z)]",  # true: the declared measure
             r"\mathbb{E}_x[\log p(x)] = \mathbb{E}_{p_{\mathcal{D}}(x)}[\log p(x)]",  # true
             r"\mathbb{E}[\log p(z)] = \mathbb{E}_{p(z)}[\log p(z)]"]  # false: E is under q(z|x), not p(z)
    assert verdicts(header + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "proven", "refuted"]


def test_a_measure_of_some_lines_only():
    header = VAE + "% measures (2): E = q(z|x)\n\n"
    text = header + r"$$\log p(x) = \log p(x) \tag{1}$$" + "\n\n" + r"$$\mathbb{E}[\log p(z)] \leq 0 \tag{2}$$" + "\n"
    assert verdicts(text) == ["proven", "refuted"]  # true; false: log p(z) may exceed 0 for a density
    unused = parse_text(VAE + "% measures (9): E = q(z|x)\n\n$$\\log p(x) = \\log p(x) \\tag{1}$$\n", "m.tex")
    assert "m.tex:2:" in unused.error.format() and "matches no step" in unused.error.format()


# ------------------------------------------------------------------------------------------------ let

def test_an_indexed_abbreviation():
    header = IWAE.replace("i = 1..k\n\n", "i = 1..2\n") + "% let: w_i = p(x,h_i)/q(h_i|x)\n\n"
    # true: Jensen for two importance weights
    line = r"\log p(x) \geq \mathbb{E}_{h_1, h_2 \sim q(h|x)}\left[\log \frac{w_1 + w_2}{2}\right]"
    assert verdicts(header + f"$${line}$$\n") == ["proven"]


def test_an_abbreviated_density():
    header = TC.replace("z = J\n\n", "z = 3\n") + "% let: \\bar{q}(z) = \\prod_{j=1}^{3} q(z_j)\n\n"
    lines = [r"D_{KL}(q(z)\|\bar{q}(z)) = TC(q(z))",  # true: the total correlation's definition
             r"D_{KL}(q(z)\|\bar{q}(z)) = 0"]  # false: q(z) need not factorize
    assert verdicts(header + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "refuted"]


def test_an_abbreviated_constant():
    header = VAE + "% coefficients: beta > 0\n% let: F_\\beta = \\int p(z)^\\beta dz\n\n"
    # true: log (p(z)^beta / F_beta) = beta log p(z) - log F_beta, F_beta a constant; false: F_beta = 1
    lines = [r"\mathbb{E}_{q(z|x)}\left[\log \frac{p(z)^\beta}{F_\beta}\right] = "
             r"\beta\, \mathbb{E}_{q(z|x)}[\log p(z)] - \log F_\beta", r"\log F_\beta = 0"]
    assert verdicts(header + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "refuted"]


def test_an_abbreviation_with_other_arguments_is_an_error():
    header = TC.replace("z = J\n\n", "z = 3\n") + "% let: \\bar{q}(z) = \\prod_{j=1}^{3} q(z_j)\n\n"
    parsed = parse_text(header + r"$$\log \bar{q}(x) \leq 0$$" + "\n", "let.tex")
    assert "the header defines \\bar{q}(z)" in parsed.error.format()


def test_a_new_name_for_a_variable():
    header = "% elbocheck model gan: p: P(c) P(x|c); aux: Q(c|x)\n% letters: P = p\n% let: G(z,c) = x\n\n"
    # true: x ~ G(z, c) drawn with c is P(x|c), so both sides are E_{P(c,x)}[log Q(c|x)] (InfoGAN, Lemma 5.1)
    line = (r"\mathbb{E}_{c \sim P(c), x \sim G(z, c)}[\log Q(c|x)] = "
            r"\mathbb{E}_{x \sim G(z, c)}\left[\mathbb{E}_{c' \sim P(c|x)}[\log Q(c'|x)]\right]")
    # true: I(c; x) = H(c) - H(c|x) under P
    assert verdicts(header + f"$${line}$$\n\n$$I(c; G(z, c)) = H(c) - H(c|G(z, c))$$\n") == ["proven", "proven"]


# ------------------------------------------------------------------------------------------------ parameters

EM_HEADER = "% elbocheck model em: p_theta(Z) p_theta(X|Z) q(Z)\n% parameters: theta\n% discrete: Z\n"
EM = EM_HEADER + "\n"


def test_parameters_written_as_arguments():
    lines = [r"\ln p(X|\theta) = \ln p_\theta(X)",  # true: the same density
             # true: a KL to the posterior at other parameter values is non-negative
             r"D_{KL}(q(Z) \| p(Z|X, \theta^{\text{old}})) \geq 0",
             # false: the posterior at theta_old is not the one at theta
             r"\ln p(Z|X, \theta^{\text{old}}) = \ln p(Z|X, \theta)"]
    assert verdicts(EM + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "proven", "refuted"]


def test_an_undeclared_parameter_set_is_an_error():
    message = header_error("% elbocheck model em: p_theta(Z) p_theta(X|Z) q(Z)\n% parameters: psi\n\n$$0=0$$\n")
    assert "clauses.tex:2:" in message and "no factor is declared with the subscript psi" in message


def test_a_substitution_assumption_the_e_step():
    header = EM_HEADER + "% assume (2): q(Z) = p(Z|X, theta^{old})\n\n"
    text = header + (
        r"$$\mathcal{L}(q, \theta) = \sum_{Z} q(Z) \ln\left\{\frac{p(X, Z|\theta)}{q(Z)}\right\} \tag{1}$$" + "\n\n"
        r"$$\mathcal{L}(q, \theta) = \sum_{Z} p(Z|X, \theta^{old}) \ln p(X, Z|\theta) - \sum_{Z} p(Z|X, \theta^{old}) "
        r"\ln p(Z|X, \theta^{old}) \tag{2}$$" + "\n")
    (result,) = judged(text)
    # true after the E step q(Z) = p(Z|X, theta_old); false for another q(Z) (the measures differ)
    assert result.verdict == "proven" and result.without_assumptions["verdict"] == "refuted"
    assert any("theta_old" in a for a in result.assumptions)


def test_a_substitution_of_an_undeclared_factor_is_an_error():
    message = header_error(EM_HEADER + "% assume: q(X) = p(X|Z, theta^{old})\n\n$$0=0$$\n")
    assert "is not a declared factor" in message


# ------------------------------------------------------------------------------------------------ letters

VIB = ("% elbocheck model vib: q: p_theta(z|x); data: p(x, y); aux: q(y|z), r(z)\n% letters: p = q\n"
       "% capitals: X, Y, Z\n% discrete: y\n\n")


def test_letters_and_capitals():
    rhs = r"\int dy\, dz\, p(y, z) \log \frac{q(y|z)}{p(y)}"
    # true: I(Z,Y) - rhs = E_{p(z)} KL(p(y|z) || q(y|z)) >= 0, p being the one joint p(x,y) p(z|x); false: <=
    lines = [rf"I(Z, Y) \geq {rhs}", rf"I(Z, Y) \leq {rhs}",
             r"I(Z, Y; \theta) = I(Z; Y)"]  # true: theta names the joint's parameters
    assert verdicts(VIB + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "refuted", "proven"]


def test_factors_with_their_own_letters():
    header = ("% elbocheck model broken: p: m(z) d(x|z); q: e(z|x); data: p^*(x)\n% letters: p_e = q\n"
              "% capitals: X, Z\n\n")
    lines = [r"I_e(X; Z) \leq \int dx\, p^*(x) \int dz\, e(z|x) \log \frac{e(z|x)}{m(z)}",  # true: the rate bound
             r"I_e(X; Z) \geq \int dx\, p^*(x) \int dz\, e(z|x) \log \frac{e(z|x)}{m(z)}"]  # false
    assert verdicts(header + "".join(f"$${line}$$\n\n" for line in lines)) == ["proven", "refuted"]
    parsed = parse_text(header + r"$$\log m(x) \leq 0$$" + "\n", "letter.tex")
    assert "the letter m names the factor m(z)" in parsed.error.format()


# ------------------------------------------------------------------------------------------------ rejected clauses

@pytest.mark.parametrize("clause, why", [("uniform: p(z)", "a uniform factor is a fixed distribution"),
                                         ("deterministic: q_phi(z|x) = z_q(x)", "a point mass")])
def test_clauses_without_a_meaning_are_rejected_with_why(clause, why):
    message = header_error(VAE + f"% {clause}\n\n$$0 = 0$$\n")
    assert message.startswith("clauses.tex:2:3:") and why in message and "docs/semantics.md" in message


def test_a_written_equiv_with_a_relation_in_the_header():
    header = VAE + "% step (1)->(2): =const\n\n"
    # true up to the data entropy H(p_D), free of the parameters
    text = header + (r"\begin{align} \mathcal{J} &= \mathbb{E}_{p_{\mathcal{D}}(x)}[\log p_\theta(x)] \tag{1} \\ "
                     r"&\equiv -D_{KL}(p_{\mathcal{D}}(x) \| p_\theta(x)) \tag{2} \end{align}" + "\n")
    results = judged(text)
    assert [(r.relation, r.verdict) for r in results] == [("= const", "proven")]
