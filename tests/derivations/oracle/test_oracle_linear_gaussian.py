"""The linear-Gaussian oracle against closed forms written in the test (and scipy's Gaussian densities)."""

import math
from fractions import Fraction as F

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from elbocheck.derivations import Model
from elbocheck.derivations.expressions import E, density, entropy, kl, log, mi, ratio
from elbocheck.derivations.oracle import (
    Divergent,
    OracleError,
    Unsupported,
    evaluate,
    instance_from_dict,
    judge,
    random_gaussian_instance,
)

VAE = Model("vae", observed=["x"], latent=["z"], generative=["p(z)", "p_theta(x|z)"], inference=["q_phi(z|x)"])


def regression(target, parents=(), weights=(), bias=0, sigma=1):
    return {"target": target, "parents": list(parents), "weights": [str(w) for w in weights], "bias": str(bias),
            "sigma": str(sigma)}


# p(z) = N(0, 1); p(x|z) = N(w z + b, s^2); p_D(x) = N(mu_D, s_D^2); q(z|x) = N(a x + c, t^2)
W, B, S = F(3, 2), F(1, 4), F(1, 2)
MU_D, S_D = F(1, 2), F(2)
A, C, T = F(1, 2), F(1, 4), F(3, 4)


def vae_instance(sigma_q=T):
    return instance_from_dict(VAE, {"kind": "linear-gaussian", "coefficients": {}, "factors": [
        {"factor": "p(z)", "targets": [regression("z")]},
        {"factor": "p_theta(x | z)", "targets": [regression("x", ["z"], [W], B, S)]},
        {"factor": "p_D(x)", "targets": [regression("x", (), (), MU_D, S_D)]},
        {"factor": "q_phi(z | x)", "targets": [regression("z", ["x"], [A], C, sigma_q)]},
    ]})


POINTS = [{"x": F(-3, 2), "z": F(1, 4)}, {"x": F(0), "z": F(-1)}, {"x": F(5, 2), "z": F(2)}]


def values(expr, precision="float64", instance=None, model=VAE, points=POINTS):
    return evaluate(model, expr, instance or vae_instance(), precision=precision, points=points)


def normal_logpdf(x, mean, sd):
    return -0.5 * math.log(2 * math.pi * sd ** 2) - (x - mean) ** 2 / (2 * sd ** 2)


@pytest.mark.parametrize("precision", ["float64", "high"])
def test_entropy_of_a_one_dimensional_gaussian(precision):
    for _, value, bound in values(entropy("q(z|x)"), precision):
        assert float(value) == pytest.approx(0.5 * math.log(2 * math.pi * math.e * float(T) ** 2), abs=1e-13)
        assert float(bound) < 1e-10


def test_kl_between_two_one_dimensional_gaussians():
    for point, value, _ in values(kl("q(z|x)", "p(z)")):
        m = float(A * point["x"] + C)
        t = float(T)
        assert value == pytest.approx(math.log(1 / t) + (t ** 2 + m ** 2) / 2 - 0.5, abs=1e-13)


def test_expected_log_likelihood_in_closed_form():
    # E_{N(z; m, t^2)}[log N(x; w z + b, s^2)] = -log(2 pi s^2)/2 - ((x - w m - b)^2 + w^2 t^2) / (2 s^2)
    for point, value, _ in values(E("q(z|x)", log("p(x|z)"))):
        x, m = float(point["x"]), float(A * point["x"] + C)
        w, b, s, t = float(W), float(B), float(S), float(T)
        expected = -0.5 * math.log(2 * math.pi * s ** 2) - ((x - w * m - b) ** 2 + w ** 2 * t ** 2) / (2 * s ** 2)
        assert value == pytest.approx(expected, abs=1e-12)


def test_marginal_posterior_aggregate_posterior_and_mutual_information():
    w, b, s = float(W), float(B), float(S)
    for point, value, _ in values(log("p(x)")):
        assert value == pytest.approx(normal_logpdf(float(point["x"]), b, math.sqrt(w ** 2 + s ** 2)), abs=1e-12)
    for point, value, _ in values(log("p(z|x)")):
        precision = 1 + w ** 2 / s ** 2
        mean = w * (float(point["x"]) - b) / s ** 2 / precision
        assert value == pytest.approx(normal_logpdf(float(point["z"]), mean, math.sqrt(1 / precision)), abs=1e-12)
    a, c, t, mu, sd = float(A), float(C), float(T), float(MU_D), float(S_D)
    for point, value, _ in values(log("q(z)")):
        expected = normal_logpdf(float(point["z"]), a * mu + c, math.sqrt(a ** 2 * sd ** 2 + t ** 2))
        assert value == pytest.approx(expected, abs=1e-12)
    rho2 = a ** 2 * sd ** 2 / (a ** 2 * sd ** 2 + t ** 2)
    for _, value, _ in values(mi("x", "z")):
        assert value == pytest.approx(-0.5 * math.log(1 - rho2), abs=1e-12)


def test_a_linear_gaussian_vae_marginal_is_gaussian_with_covariance_w_wt_plus_sigma2():
    model = Model("lg_vae", observed=["x"], latent=["z"], vectors={"z": 2, "x": 3},
                  generative=["prod_j p(z_j)", "p_theta(x|z)"], inference=["q_phi(z|x)"])
    w = [[F(1), F(-1, 2)], [F(1, 4), F(3, 2)], [F(-1), F(1, 2)]]
    b = [F(1, 8), F(-1, 4), F(1, 2)]
    s = F(3, 4)
    instance = instance_from_dict(model, {"kind": "linear-gaussian", "coefficients": {}, "factors": [
        {"factor": "p(z_1)", "targets": [regression("z_1")]},
        {"factor": "p(z_2)", "targets": [regression("z_2")]},
        {"factor": "p_theta(x | z)", "targets": [regression(f"x_{i + 1}", ["z_1", "z_2"], w[i], b[i], s)
                                                 for i in range(3)]},
        {"factor": "p_D(x)", "targets": [regression(f"x_{i + 1}") for i in range(3)]},
        {"factor": "q_phi(z | x)", "targets": [regression("z_1", ["x_1"], [F(1, 2)]),
                                               regression("z_2", ["x_2", "z_1"], [F(1, 3), F(1, 5)])]},
    ]})
    W_ = np.array(w, dtype=float)
    covariance = W_ @ W_.T + float(s) ** 2 * np.eye(3)
    rng = np.random.default_rng(0)
    points = [{f"x_{i + 1}": F(int(v), 8) for i, v in enumerate(rng.integers(-24, 24, size=3))} for _ in range(3)]
    for precision in ("float64", "high"):
        rows = evaluate(model, log("p(x)"), instance, precision=precision, points=points)
        for point, value, _ in rows:
            x = np.array([float(point[f"x_{i + 1}"]) for i in range(3)])
            expected = scipy.stats.multivariate_normal(mean=np.array(b, dtype=float), cov=covariance).logpdf(x)
            assert float(value) == pytest.approx(expected, abs=1e-11)
        # the same marginal as a log-expectation of an exp-quadratic: log E_{p(z)}[p(x|z)]
        rows = evaluate(model, log(E("p(z)", density("p(x|z)"))), instance, precision=precision, points=points)
        for point, value, _ in rows:
            x = np.array([float(point[f"x_{i + 1}"]) for i in range(3)])
            expected = scipy.stats.multivariate_normal(mean=np.array(b, dtype=float), cov=covariance).logpdf(x)
            assert float(value) == pytest.approx(expected, abs=1e-11)


def test_log_expectation_of_a_power_of_a_ratio_and_its_divergence():
    """E_q[(p(z)/q(z|x))^k] with q = N(m, t^2), p = N(0, 1): the integrand decays like exp(-z^2 (1-k)/(2t^2) -
    k z^2 / 2), so it converges iff (1 - k)/t^2 + k > 0; with t = 1/2: iff k < 4/3."""
    t = F(1, 2)
    instance = vae_instance(sigma_q=t)
    for k in (F(1, 2), F(5, 4)):
        expr = log(E("q(z|x)", ratio(["p(z)"], ["q(z|x)"]) ** k))
        for point, value, _ in values(expr, instance=instance):
            m = float(A * point["x"] + C)

            def integrand(z):
                return math.exp((1 - float(k)) * scipy.stats.norm.logpdf(z, m, float(t))
                                + float(k) * scipy.stats.norm.logpdf(z))

            integral, error = scipy.integrate.quad(integrand, m - 30, m + 30, epsabs=1e-13, epsrel=1e-13, limit=200)
            assert value == pytest.approx(math.log(integral), abs=1e-9 + 5 * error / integral)
    with pytest.raises(Divergent, match="diverges"):
        values(log(E("q(z|x)", ratio(["p(z)"], ["q(z|x)"]) ** 2)), instance=instance)


def test_terms_without_a_closed_form_are_unsupported_never_a_number():
    with pytest.raises(Unsupported):
        values(E("q(z|x)", log("p(z)") * log("q(z|x)")))
    with pytest.raises(Unsupported):
        values(log(density("p(x)") + density("p_D(x)")))
    with pytest.raises(Unsupported):
        values(E("q(z|x)", density("p(z)") * log("q(z|x)")))


def test_differential_entropy_can_be_negative():
    """H(q(z|x)) >= 0 holds on every discrete instance and fails for a narrow Gaussian (docs/semantics.md 6)."""
    narrow = vae_instance(sigma_q=F(1, 16))
    result = judge(VAE, entropy("q(z|x)"), ">=", 0, instance=narrow, precision="high", points=POINTS)
    assert not result.holds
    assert float(result.worst().gap) == pytest.approx(0.5 * math.log(2 * math.pi * math.e / 256), abs=1e-12)
    for seed in range(5):
        assert judge(VAE, entropy("q(z|x)"), ">=", 0, rng=seed).holds


def test_a_scaled_instance_shifts_every_entropy_by_the_log_of_its_scale():
    """The same draw at scale s: every atom's spread is s times, so a one-dimensional differential entropy is
    H + log s (aggregate marginals too), and at s = 1/16 every one is negative."""
    for seed in range(3):
        unit = random_gaussian_instance(VAE, rng=seed)
        narrow = random_gaussian_instance(VAE, rng=seed, scale=F(1, 16))
        for term in (entropy("q(z|x)"), entropy("q(z)"), entropy("p(x)")):
            h_unit = float(values(term, instance=unit, points=POINTS[:1])[0][1])
            h_narrow = float(values(term, instance=narrow, points=[{a: v / 16 for a, v in POINTS[0].items()}])[0][1])
            assert h_unit > 0
            assert h_narrow == pytest.approx(h_unit - math.log(16), abs=1e-12)
            assert h_narrow < 0
    with pytest.raises(OracleError, match="scale"):
        random_gaussian_instance(VAE, rng=0, scale=0)


def test_elbo_bound_and_gap_on_random_gaussian_instances():
    elbo = E("q(z|x)", log(ratio(["p(x,z)"], ["q(z|x)"])))
    for seed in range(3):
        instance = random_gaussian_instance(VAE, rng=seed)
        assert judge(VAE, log("p(x)"), ">=", elbo, instance=instance, rng=seed).holds
        assert judge(VAE, log("p(x)"), "=", elbo + kl("q(z|x)", "p(z|x)"), instance=instance, rng=seed,
                     precision="high").holds
        assert not judge(VAE, log("p(x)"), "=", elbo + kl("q(z|x)", "p(z)"), instance=instance, rng=seed,
                         precision="high").holds


def test_high_precision_removes_a_visible_float64_rounding_gap():
    """Issue 9, item 4: in a two-layer model with narrow conditionals and a far point, float64 shows a visible gap
    for the chain rule; 50 digits show none. The float64 bound covers its own gap (no false violation)."""
    model = Model("two_layer", observed=["x"], latent=["z_1", "z_2"],
                  generative=["p(z_2)", "p_theta(z_1|z_2)", "p_theta(x|z_1)"], inference=["q_phi(z_1,z_2|x)"])
    narrow = F(1, 2 ** 18)
    instance = instance_from_dict(model, {"kind": "linear-gaussian", "coefficients": {}, "factors": [
        {"factor": "p(z_2)", "targets": [regression("z_2")]},
        {"factor": "p_theta(z_1 | z_2)", "targets": [regression("z_1", ["z_2"], [F(7, 5)], F(1, 3), narrow)]},
        {"factor": "p_theta(x | z_1)", "targets": [regression("x", ["z_1"], [F(9, 7)], F(-1, 3), narrow)]},
        {"factor": "p_D(x)", "targets": [regression("x")]},
        {"factor": "q_phi(z_1, z_2 | x)", "targets": [regression("z_1", ["x"], [1]), regression("z_2", ["x"], [1])]},
    ]})
    point = [{"x": F(1000), "z_1": F(-999, 7), "z_2": F(3)}]
    lhs, rhs = log("p(x,z_1)"), log("p(z_1)") + log("p(x|z_1)")
    low = judge(model, lhs, "=", rhs, instance=instance, points=point)
    high = judge(model, lhs, "=", rhs, instance=instance, points=point, precision="high")
    row_low, row_high = low.rows[0], high.rows[0]
    assert abs(row_low.lhs) > 1e12                 # log-densities of order -1e13
    assert abs(row_low.gap) > 1e-6                 # a visible float64 rounding gap
    assert low.holds                               # ... within the float64 bound
    assert abs(row_high.gap) < 1e-25 and row_high.bound < 1e-20
    assert high.holds
