"""CUDA smoke test: a few training steps of every model on the GPU, every term finite, the same terms as on CPU.

Skipped, with the reason shown in the summary (``pytest -ra``), where no CUDA device is present.
"""

import copy

import pytest
import torch

from elbocheck.models import MODELS
from elbocheck.models.trainer import TrainConfig, Trainer
from model_testing import MODEL_DATA, TINY_LATENTS, TINY_NETWORK, head_batch, tiny_dataset, tiny_model

pytestmark = pytest.mark.cuda


@pytest.fixture
def cuda_device():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device: torch.cuda.is_available() is False on this machine")
    return torch.device("cuda")


@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16-autocast"])
@pytest.mark.parametrize("name", sorted(MODELS))
def test_a_few_steps_on_cuda_keep_every_term_finite(name, amp, cuda_device, tmp_path):
    dataset = tiny_dataset(MODEL_DATA[name])
    config = TrainConfig(model=name, data=MODEL_DATA[name], epochs=2, batch_size=32, device="cuda", amp=amp,
                         progress=False, max_steps_per_epoch=3, model_options={**TINY_NETWORK, **TINY_LATENTS[name]})
    trainer = Trainer(config, tmp_path / name, dataset=dataset)
    assert next(trainer.model.parameters()).device.type == "cuda"
    result = trainer.fit()
    cpu_model, _ = tiny_model(name)
    for row in result.last_rows:
        logged = [key for key in row if key not in ("epoch", "split", "examples", "seconds")]
        assert logged == list(cpu_model.term_names)
        assert all(torch.isfinite(torch.tensor(row[t])) for t in cpu_model.term_names)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_cuda_and_cpu_report_the_same_terms_for_the_same_weights_and_sample(name, cuda_device):
    cpu_model, dataset = tiny_model(name)
    gpu_model = copy.deepcopy(cpu_model).to(cuda_device)
    batch = head_batch(dataset, size=16)
    samples = {n: q.mean.detach() for n, q in cpu_model.encode(batch).items()}
    if name == "infovae":
        samples["prior_z"] = torch.randn(16, cpu_model.latent_dim)
    cpu_terms = cpu_model(batch, latent_samples=samples)
    gpu_terms = gpu_model(batch.to(cuda_device), latent_samples={k: v.to(cuda_device) for k, v in samples.items()})
    assert list(gpu_terms) == list(cpu_terms)
    for key in cpu_terms:
        torch.testing.assert_close(gpu_terms[key].cpu(), cpu_terms[key], rtol=1e-4, atol=1e-3, msg=key)
