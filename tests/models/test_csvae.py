import math

import torch

from elbocheck.models import build_model, load_dataset
from model_testing import TINY_NETWORK, head_batch, tiny_model


def test_binary_label_has_one_subspace_with_separated_prior_components():
    model, dataset = tiny_model("csvae", w_dim_per_attribute=2)
    assert model.num_attributes == 1 and model.w_dim == 2
    y = torch.tensor([0, 1, 1, 0])
    prior = model.w_prior(y)
    torch.testing.assert_close(prior.base_dist.loc, torch.tensor([[0.0, 0.0], [3.0, 3.0], [3.0, 3.0], [0.0, 0.0]]))
    torch.testing.assert_close(prior.base_dist.scale, torch.tensor([[0.1, 0.1], [1.0, 1.0], [1.0, 1.0], [0.1, 0.1]]))


def test_multiclass_label_has_one_subspace_per_class():
    digits = load_dataset("digits", size=60)
    model = build_model("csvae", digits.spec(), w_dim_per_attribute=2, z_dim=2, **TINY_NETWORK)
    assert model.num_attributes == 10 and model.w_dim == 20
    prior = model.w_prior(torch.tensor([3]))
    loc = prior.base_dist.loc.view(10, 2)
    assert torch.equal(loc[3], torch.tensor([3.0, 3.0])) and float(loc.abs().sum()) == 6.0
    terms = model(head_batch(digits))
    torch.testing.assert_close(terms["log_prior_y"], torch.tensor(-math.log(10.0)))


def test_switch_removes_the_adversary_and_its_entropy():
    with_adversary, dataset = tiny_model("csvae")
    without, _ = tiny_model("csvae", use_adversary=False)
    assert with_adversary.parameter_groups().keys() == {"model", "adversary"}
    assert without.parameter_groups().keys() == {"model"} and without.adversary_net is None
    assert set(without.losses(without(head_batch(dataset)))) == {"model"}


def test_entropy_term_pushes_only_the_encoder_and_the_adversary_loss_only_the_adversary():
    model, dataset = tiny_model("csvae", beta1=0.0, beta2=0.0, beta3=0.0, beta4=1.0)
    terms = model(head_batch(dataset))
    losses = model.losses(terms)
    adversary_params = model.adversary_parameters()
    # with beta1..3 = 0 the model loss is -(log p(y) + H): its gradient reaches the z encoder, not the w encoder
    encoders = list(model.z_encoder.parameters()) + list(model.w_encoder.parameters())
    grads = torch.autograd.grad(losses["model"], encoders, retain_graph=True, allow_unused=True)
    z_count = len(list(model.z_encoder.parameters()))
    assert any(g is not None and float(g.abs().sum()) > 0 for g in grads[:z_count])
    assert all(g is None or float(g.abs().sum()) == 0 for g in grads[z_count:])
    adversary_grads = torch.autograd.grad(losses["adversary"], adversary_params)
    assert all(g is not None for g in adversary_grads)
