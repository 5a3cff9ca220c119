import math

import pytest
import torch

from elbocheck.estimators.audit_adapters import AuditCallError, AuditedFunction

Z = torch.tensor([[0.1, -0.2], [0.3, 0.5], [-1.0, 0.0]])
MEAN = torch.tensor([[0.0, 0.0], [0.5, 0.5], [-1.0, 0.2]])
LOG_VAR = torch.full((3, 2), -1.0)


def test_parameters_are_recognised_by_name():
    seen = {}

    def terms(latent_sample, mu, logvar, n_data, scale=1.0):
        seen.update(z=latent_sample, mean=mu, log_var=logvar, n=n_data, scale=scale)
        return {"mi_loss": torch.tensor(1.0)}

    values = AuditedFunction(terms, options={"scale": 2.0})(Z, MEAN, LOG_VAR, 100)
    assert values == {"mutual_information": 1.0}
    assert seen["z"] is Z and seen["mean"] is MEAN and seen["log_var"] is LOG_VAR and seen["n"] == 100
    assert seen["scale"] == 2.0

    def with_pair(z, latent_dist, dataset_size):
        mean, log_var = latent_dist
        return {"tc": (z - mean).sum(-1) + log_var.sum(-1)}  # one value per example: its mean is taken

    values = AuditedFunction(with_pair)(Z, MEAN, LOG_VAR, 10)
    assert values["total_correlation"] == pytest.approx(float(((Z - MEAN).sum(-1) + LOG_VAR.sum(-1)).mean()))


def test_unrecognised_parameters_are_named():
    def terms(z, mean, log_var, dataset_size, temperature):
        return {}

    with pytest.raises(ValueError, match="parameter 'temperature' has no default and no value in 'options'"):
        AuditedFunction(terms)

    def no_size(z, mean, log_var):
        return {}

    with pytest.raises(ValueError, match="no parameter for the data-set size"):
        AuditedFunction(no_size)
    with pytest.raises(ValueError, match="argument 'signature' must be one of"):
        AuditedFunction(no_size, signature="positional")
    with pytest.raises(ValueError, match="argument 'function' must be callable"):
        AuditedFunction(3)


def test_explicit_signatures_call_positionally():
    def disvae_style(latent_sample, latent_dist, n_data, is_mss=True):
        assert isinstance(latent_dist, tuple) and is_mss is False
        return torch.zeros(3), torch.ones(3), torch.full((3,), 2.0), torch.full((3,), 5.0)

    values = AuditedFunction(disvae_style, signature="disvae", options={"is_mss": False})(Z, MEAN, LOG_VAR, 10)
    # disentangling-vae's order (log_pz, log_qz, log_prod_qzi, log_q_zCx), and the terms built from them
    assert values == {"log_pz": 0.0, "log_qz": 1.0, "log_prod_qzi": 2.0, "log_q_zCx": 5.0,
                      "mutual_information": 4.0, "total_correlation": -1.0, "dimensionwise_kl": 2.0, "kl": 5.0}

    def positional(a, b, c, d):
        return a.sum() + b.sum() + c.sum() + d

    values = AuditedFunction(positional, signature="z_mean_logvar_n", names=["kl"])(Z, MEAN, LOG_VAR, 10)
    assert values["kl"] == pytest.approx(float(Z.sum() + MEAN.sum() + LOG_VAR.sum() + 10))


def test_return_values_are_read_by_alias_or_by_the_names_given():
    def terms(z, mean, log_var, dataset_size):
        return {"mutual_info_loss": 1.0, "TC_loss": torch.tensor([2.0]), "dimension_wise_KL": torch.tensor(3.0),
                "loss": 10.0, "recon": 7.0}

    audited = AuditedFunction(terms)
    assert audited(Z, MEAN, LOG_VAR, 10) == {"mutual_information": 1.0, "total_correlation": 2.0,
                                             "dimensionwise_kl": 3.0}
    assert audited.ignored == ("loss", "recon")
    mapped = AuditedFunction(terms, names={"recon": "log_q_zCx", "loss": None})
    assert mapped(Z, MEAN, LOG_VAR, 10)["log_q_zCx"] == 7.0
    with pytest.raises(ValueError, match="argument 'names': unknown quantity 'entropy'"):
        AuditedFunction(terms, names={"recon": "entropy"})


@pytest.mark.parametrize(("returned", "message"), [
    ((1.0, 2.0), "returned 2 unnamed value\\(s\\); name them in order with 'names'"),
    ({"loss": 1.0}, "returned no quantity the audit knows \\(loss\\)"),
    ({"mi": torch.ones(2, 2)}, "returned shape \\(2, 2\\) for 'mi'; expected a scalar"),
    ({"mi": torch.tensor(math.nan)}, "returned a non-finite value for 'mi'"),
    ({"mi": "high"}, "returned str for 'mi'"),
    ("text", "returned str; expected a dict, a tuple or a tensor"),
])
def test_unreadable_returns_are_named(returned, message):
    audited = AuditedFunction(lambda z, mean, log_var, dataset_size: returned, label="f")
    with pytest.raises(AuditCallError, match=message):
        audited(Z, MEAN, LOG_VAR, 10)


def test_an_exception_inside_is_reported_with_its_type():
    def broken(z, mean, log_var, dataset_size):
        raise IndexError("index 7 is out of bounds")

    with pytest.raises(AuditCallError, match="broken raised IndexError: index 7 is out of bounds"):
        AuditedFunction(broken).probe()


def test_a_named_tuple_of_the_wrong_length_is_refused():
    audited = AuditedFunction(lambda z, mean, log_var, n: (1.0, 2.0, 3.0), names=["kl", None], label="g")
    with pytest.raises(AuditCallError, match="g returned 3 value\\(s\\) but 'names' names 2"):
        audited(Z, MEAN, LOG_VAR, 10)
    skipped = AuditedFunction(lambda z, mean, log_var, n: (1.0, 2.0), names=[None, "kl"])
    assert skipped.probe() == ["kl"]
