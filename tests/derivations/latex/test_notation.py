"""Notation that papers write (issue 10): each form is read, and a true step written with it is proven. The
expected verdicts follow from the mathematics (each step is an identity or a standard inequality)."""

import pytest

from elbocheck.derivations.latex import check_parsed, parse_text

TC_HEADER = "% elbocheck model tc: prod_j p(z_j) p_theta(x|z) q_phi(z|x); vectors: z = 3\n\n"
VAE_HEADER = "% elbocheck model vae: p(z) p_theta(x|z) q_phi(z|x)\n\n"


def verdicts(text, name="notation.tex"):
    parsed = parse_text(text, name)
    assert parsed.error is None, parsed.error.format()
    return [r.verdict for r in check_parsed(parsed).step_results]


@pytest.mark.parametrize("line", [
    # sums and products over components, with or without limits
    r"D_{KL}(q(z)\|p(z)) = D_{KL}(q(z) \| \prod_j q(z_j)) + \sum_{j=1}^{3} D_{KL}(q(z_j)\|p(z_j))",
    r"\mathbb{E}_{x\sim p_{\mathcal D}}\left[D_{KL}(q_\phi(z|x)\|p(z))\right] = I_q(x;z) + D_{KL}(q(z) \| \prod_{j=1}^{3} p(z_j))",
    r"\log \prod_{j=1}^{3} p(z_j) = \sum_j \log p(z_j)",
    r"\log \prod_{j} p(z_j) = \log p(z_1, \dots, z_3)",
    r"\sum\limits_{j=1}^{3} D_{KL}(q(z_j)\|p(z_j)) \geq 0",
])
def test_sums_products_and_dots_over_components(line):
    assert verdicts(TC_HEADER + f"$${line}$$\n") == ["proven"]


@pytest.mark.parametrize("line", [
    # measures written without their arguments
    r"\mathbb{E}_{q_\phi}[\log p(x|z)] = \mathbb{E}_{q_\phi(z|x)}[\log p(x|z)]",
    r"\mathbb{E}_{q}\left[\log p_\theta(x|z)\right] - D_{KL}(q(z|x)\|p(z)) = \mathbb{E}_{q(z|x)}\left[\log \frac{p(x,z)}{q(z|x)}\right]",
    r"\mathbb{E}_q \log p(x|z) = \mathbb{E}_{z \sim q_\phi(z|x)}[\log p(x|z)]",
    r"\mathbb{E}_{x\sim p_{\mathcal D}}[\log p(x)] = \mathbb{E}_{p_{\mathcal D}(x)}[\log p(x)]",
    r"\mathbf{E}_{q(z|x)}[\log p(x|z)] = \mathbb{E}_{q(z|x)}[\log p(x|z)]",
    # entropies
    r"\mathbb{H}[q(z|x)] = -\mathbb{E}_{q(z|x)}[\log q(z|x)]",
    r"H_q(z|x) = \mathbb{E}_{p_{\mathcal{D}}(x)}[\mathbb{H}[q(z|x)]]",
    r"H(z|x) = -\mathbb{E}_{p_{\mathcal{D}}(x) q(z|x)}[\log q(z|x)]",
    r"I_q(x;z) = H(z) - H(z|x)",
    # marginals, parameters after ';', fractional powers
    r"\log \int p(x,z)\,dz = \log p(x)",
    r"\log p(x;\theta) = \log p_\theta(x)",
    r"\log p(x|z;\theta) = \log p_\theta(x|z)",
    r"\log p(x)^{1/2} = \frac{1}{2} \log p(x)",
    r"\log p(x)^{\frac{1}{2}} = \frac{\log p(x)}{2}",
    r"D_{KL}(q(z|x) \| p(z)) = \mathbb{E}_{q(z|x)}\left[\log q(z|x)\right] - \mathbb{E}_{q(z|x)}\left[\log p(z)\right]",
])
def test_measures_entropies_marginals_and_powers(line):
    assert verdicts(VAE_HEADER + f"$${line}$$\n") == ["proven"]


def test_a_kl_to_a_product_of_densities():
    header = "% elbocheck model two: p(z_1) p(z_2) p_theta(x|z_1,z_2) q_phi(z_1,z_2|x)\n\n"
    true = r"D_{KL}(q(z_1,z_2|x)\|p(z_1)p(z_2)) = D_{KL}(q(z_1,z_2|x)\|p(z_1,z_2))"
    false = r"D_{KL}(q(z_1,z_2|x)\|p(z_1)p(z_2)) = D_{KL}(q(z_1|x)\|p(z_1)) + D_{KL}(q(z_2|x)\|p(z_2))"
    assert verdicts(header + f"$${true}$$\n\n$${false}$$\n") == ["proven", "refuted"]


def test_an_unbracketed_expectation_that_leaves_a_variable_free_is_an_error():
    parsed = parse_text(VAE_HEADER + r"$$\mathbb{E}_{q(z|x)} \log p(x|z) + \log p(z) = 0$$" + "\n", "loose.tex")
    message = parsed.error.format()
    assert message.startswith("loose.tex:3:") and "z is not bound here" in message
    assert "did you mean the expectation to cover both terms?" in message


def test_a_sum_whose_upper_limit_is_not_the_vector_size_is_an_error():
    parsed = parse_text(TC_HEADER + r"$$\sum_{j=1}^{2} D_{KL}(q(z_j)\|p(z_j)) \geq 0$$" + "\n", "limit.tex")
    assert "z has 3 components, not 2" in parsed.error.format()


def test_a_sum_over_an_undeclared_index_is_an_error():
    parsed = parse_text(VAE_HEADER + r"$$\sum_{k=1}^{K} \log p(x) \geq 0$$" + "\n", "index.tex")
    assert "names no component of a vector" in parsed.error.format()


def test_a_log_followed_by_a_division_is_ambiguous():
    parsed = parse_text(VAE_HEADER + r"$$\log p(x)^{1/2} = \log p(x) / 2$$" + "\n", "slash.tex")
    assert "ambiguous" in parsed.error.format()
