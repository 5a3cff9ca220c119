import torch

from elbocheck.models.trainer import TrainConfig, Trainer
from model_testing import tiny_model


def test_one_trainer_step_is_a_simultaneous_min_max_step(tmp_path):
    """Adam's first step moves each parameter by -lr * sign(gradient). The adversary must follow the gradient of its
    own cross-entropy (minimise it); the encoder must follow the gradient of -(ELBO + rho * cross-entropy)."""
    model, dataset = tiny_model("condvae_info", adversary_weight=2.0)
    config = TrainConfig(model="condvae_info", data="digits", batch_size=150, lr=1e-3, progress=False)
    trainer = Trainer(config, tmp_path / "run", model=model, dataset=dataset)
    batch = trainer.splits["train"]
    torch.manual_seed(7)
    terms = model(batch)
    adversary_grads = torch.autograd.grad(terms["adversary"], model.adversary_parameters(), retain_graph=True)
    encoder_params = list(model.encoder.parameters())
    encoder_grads = torch.autograd.grad(-terms["objective"], encoder_params)
    before_adversary = [p.detach().clone() for p in model.adversary_parameters()]
    before_encoder = [p.detach().clone() for p in encoder_params]
    torch.manual_seed(7)
    trainer.train_step(batch, epoch=1, step=1)
    for old, new, grad in zip(before_adversary, model.adversary_parameters(), adversary_grads):
        moved = (new.detach() - old)[grad.abs() > 1e-6]
        torch.testing.assert_close(moved, -1e-3 * torch.sign(grad[grad.abs() > 1e-6]), rtol=1e-2, atol=1e-6)
    for old, new, grad in zip(before_encoder, encoder_params, encoder_grads):
        moved = (new.detach() - old)[grad.abs() > 1e-6]
        torch.testing.assert_close(moved, -1e-3 * torch.sign(grad[grad.abs() > 1e-6]), rtol=1e-2, atol=1e-6)
