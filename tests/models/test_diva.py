import pytest
import torch

from elbocheck.models import build_model
from model_testing import TINY_NETWORK, head_batch, tiny_dataset, tiny_model


def test_needs_domains_and_labels():
    with pytest.raises(ValueError, match="model .diva. needs domain labels d"):
        build_model("diva", tiny_dataset("digits").spec(), **TINY_NETWORK)


def test_learned_conditional_priors_depend_on_the_label():
    model, dataset = tiny_model("diva")
    prior = model.prior_zd(torch.arange(6))
    assert prior.batch_shape == (6,) and not torch.allclose(prior.base_dist.loc[0], prior.base_dist.loc[1])
    assert any(p is model.prior_zd.net[0].weight for p in model.parameter_groups()["model"])


def test_zero_alphas_remove_the_classifiers_from_the_objective():
    model, dataset = tiny_model("diva", alpha_d=0.0, alpha_y=0.0)
    terms = model(head_batch(dataset))
    classifier_params = list(model.classifier_d.parameters()) + list(model.classifier_y.parameters())
    grads = torch.autograd.grad(model.losses(terms)["model"], classifier_params, allow_unused=True)
    assert all(g is None or float(g.abs().sum()) == 0 for g in grads)
    torch.testing.assert_close(terms["objective"], terms["elbo"])  # beta = 1, alpha = 0: the objective is the ELBO
    assert terms["classifier_y"].item() < 0  # still reported (a log-likelihood)
