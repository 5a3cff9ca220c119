import pytest
import torch

from elbocheck.models.networks import (
    Classifier,
    Decoder,
    GaussianEncoder,
    num_downsamplings,
    resolve_architecture,
)


@pytest.mark.parametrize(
    "shape, architecture, downsamplings",
    [((1, 8, 8), "conv", 1), ((1, 28, 28), "conv", 2), ((1, 64, 64), "conv", 4), ((1, 8, 8), "mlp", None),
     ((3,), "mlp", None)],
)
def test_encoder_and_decoder_shapes(shape, architecture, downsamplings):
    if downsamplings is not None:
        assert num_downsamplings(shape[1], shape[2]) == downsamplings
    encoder = GaussianEncoder(shape, 4, condition_dim=2, hidden_dim=8, architecture=architecture)
    decoder = Decoder(4, shape, 3, condition_dim=2, hidden_dim=8, architecture=architecture)
    x = torch.rand(5, *shape)
    condition = torch.eye(2)[torch.tensor([0, 1, 0, 1, 1])]
    posterior = encoder(x, condition)
    assert posterior.batch_shape == (5,) and posterior.event_shape == (4,)
    assert bool((posterior.base_dist.scale > 0).all())
    output = decoder(posterior.rsample(), condition)
    assert output.shape == (5, *shape, 3)


def test_condition_changes_the_output_and_is_required():
    encoder = GaussianEncoder((6,), 2, condition_dim=3, hidden_dim=8)
    x = torch.randn(1, 6).repeat(3, 1)
    q = encoder(x, torch.eye(3))
    assert not torch.allclose(q.base_dist.loc[0], q.base_dist.loc[1])
    with pytest.raises(ValueError, match="condition"):
        encoder(x)


def test_architecture_choice_is_checked():
    assert resolve_architecture("auto", (1, 8, 8)) == "conv"
    assert resolve_architecture("auto", (3,)) == "mlp"
    with pytest.raises(ValueError, match="valid choices: auto, mlp, conv"):
        resolve_architecture("resnet", (3,))
    with pytest.raises(ValueError, match="needs image data"):
        resolve_architecture("conv", (3,))


def test_classifier_gives_logits_per_class():
    assert Classifier(4, 7, hidden_dim=5)(torch.randn(2, 4)).shape == (2, 7)
