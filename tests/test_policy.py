"""MLP policy heads, functional calls, observation normalisation and device resolution."""

from __future__ import annotations

import gymnasium
import numpy as np
import pytest
import torch
from gameadapt.errors import GameadaptError
from gameadapt.learn.policy import (
    MLPPolicy,
    distribution_params,
    evaluate_actions,
    expand_params,
    greedy_action,
    policy_params,
    resolve_device,
)

torch.set_num_threads(1)  # tiny tensors: extra threads only add overhead on small machines

OBS = gymnasium.spaces.Box(-np.inf, np.inf, (3,), np.float32)
BOX = gymnasium.spaces.Box(-1.0, 1.0, (2,), np.float32)
DISCRETE = gymnasium.spaces.Discrete(5)


@pytest.fixture(params=["box", "discrete"])
def policy(request: pytest.FixtureRequest) -> MLPPolicy:
    torch.manual_seed(0)
    return MLPPolicy(OBS, BOX if request.param == "box" else DISCRETE, (16, 8),
                     init_log_std=-0.3)


def test_layers_and_params(policy: MLPPolicy) -> None:
    params = policy_params(policy)
    assert [n for n in params if n.endswith("weight")] == ["body.0.weight", "body.2.weight",
                                                          "head.weight"]
    assert ("log_std" in params) == (not policy.discrete)
    assert all(p is q for p, q in zip(params.values(), policy.parameters()))
    assert {"obs_mean", "obs_var", "obs_count"} <= {n for n, _ in policy.named_buffers()}


def test_log_prob_and_entropy_match_torch_distributions(policy: MLPPolicy) -> None:
    obs = torch.randn(4, 6, 3)
    params = policy_params(policy)
    dist = distribution_params(policy, params, obs)
    reference = policy.to_distribution(dist)
    actions = reference.sample()
    log_prob, entropy = evaluate_actions(policy, params, obs, actions)
    assert log_prob.shape == entropy.shape == (4, 6)
    torch.testing.assert_close(log_prob, reference.log_prob(actions))
    torch.testing.assert_close(entropy, reference.entropy())


def test_gaussian_log_std_is_state_independent() -> None:
    policy = MLPPolicy(OBS, BOX, init_log_std=-0.5)
    mean, log_std = distribution_params(policy, policy_params(policy), torch.randn(7, 3))
    assert mean.shape == log_std.shape == (7, 2)
    assert torch.all(log_std == -0.5)


def test_sampling_uses_the_generator(policy: MLPPolicy) -> None:
    dist = distribution_params(policy, policy_params(policy), torch.randn(50, 3))
    first = policy.sample(dist, torch.Generator().manual_seed(3))
    again = policy.sample(dist, torch.Generator().manual_seed(3))
    other = policy.sample(dist, torch.Generator().manual_seed(4))
    assert torch.equal(first, again) and not torch.equal(first, other)
    assert first.dtype == (torch.long if policy.discrete else torch.float32)


def test_categorical_sampling_follows_the_probabilities() -> None:
    policy = MLPPolicy(OBS, DISCRETE, (4,))
    logits = torch.tensor([[2.0, 0.0, -1.0, 0.5, -3.0]]).expand(40_000, 5)
    samples = policy.sample((logits,), torch.Generator().manual_seed(0))
    frequencies = torch.bincount(samples, minlength=5).float() / samples.numel()
    torch.testing.assert_close(frequencies, torch.softmax(logits[0], -1), atol=0.01, rtol=0)


def test_greedy_action(policy: MLPPolicy) -> None:
    obs = torch.randn(5, 3)
    dist = distribution_params(policy, policy_params(policy), obs)
    expected = dist[0].argmax(-1) if policy.discrete else dist[0].clamp(-1, 1)
    assert torch.equal(greedy_action(policy, obs), expected)


def test_box_actions_are_scaled_to_the_bounds() -> None:
    low, high = np.array([-0.1, 0.0], np.float32), np.array([0.1, 4.0], np.float32)
    space = gymnasium.spaces.Box(low, high)
    scaled, raw = MLPPolicy(OBS, space), MLPPolicy(OBS, space, scale_actions=False)
    actions = torch.tensor([[0.5, 0.5], [-3.0, 3.0], [1.0, -1.0]])
    expected = torch.tensor([[0.05, 3.0], [-0.1, 4.0], [0.1, 0.0]])
    torch.testing.assert_close(scaled.to_env_action(actions), expected)
    torch.testing.assert_close(raw.to_env_action(actions),
                               torch.tensor([[0.1, 0.5], [-0.1, 3.0], [0.1, 0.0]]))
    unbounded = MLPPolicy(OBS, gymnasium.spaces.Box(-np.inf, np.inf, (2,), np.float32))
    assert torch.equal(unbounded.to_env_action(actions), actions)
    assert "action_scale" not in scaled.state_dict()  # derived from the space, not saved


def test_functional_call_uses_the_given_params(policy: MLPPolicy) -> None:
    obs = torch.randn(5, 3)
    params = policy_params(policy)
    shifted = {name: value + 0.1 for name, value in params.items()}
    assert not torch.allclose(distribution_params(policy, shifted, obs)[0],
                              distribution_params(policy, params, obs)[0])
    torch.testing.assert_close(distribution_params(policy, params, obs)[0], policy(obs))


def test_expand_params_adds_a_task_dimension(policy: MLPPolicy) -> None:
    batched = expand_params(policy_params(policy), 4)
    assert all(b.shape == (4, *p.shape) for b, p in zip(batched.values(),
                                                        policy_params(policy).values()))


def test_normalizer_merges_batches_and_respects_the_mask() -> None:
    policy = MLPPolicy(OBS, BOX)
    first, second = torch.randn(30, 3) * 2 + 1, torch.randn(3, 20, 3) - 4
    mask = torch.ones(3, 20)
    mask[1:, 15:] = 0
    policy.update_normalizer(first)
    policy.update_normalizer(second, mask)
    everything = torch.cat([first, second[mask > 0]]).double()
    torch.testing.assert_close(policy.obs_mean.double(), everything.mean(0), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(policy.obs_var.double(), everything.var(0, unbiased=False),
                               rtol=1e-5, atol=1e-5)
    assert policy.obs_count.item() == everything.shape[0]
    obs = torch.randn(4, 3)
    expected = (obs - policy.obs_mean) / torch.sqrt(policy.obs_var + 1e-8)
    torch.testing.assert_close(policy.normalize(obs), expected)
    assert not any(b.requires_grad for b in policy.buffers())


def test_unsupported_spaces_are_rejected() -> None:
    with pytest.raises(GameadaptError, match="action spaces"):
        MLPPolicy(OBS, gymnasium.spaces.MultiBinary(3))
    with pytest.raises(GameadaptError, match="observation space"):
        MLPPolicy(gymnasium.spaces.Discrete(3), BOX)


def test_resolve_device() -> None:
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(GameadaptError, match="unknown device"):
        resolve_device("gpu-please")
    if not torch.cuda.is_available():
        with pytest.raises(GameadaptError, match="CUDA is not available"):
            resolve_device("cuda")


def module_layers_output(policy: MLPPolicy, obs: torch.Tensor) -> torch.Tensor:
    """The policy's function as its modules define it: normalise, Linear/Tanh body, head."""
    return policy.head(policy.body(policy.normalize(obs)))


def test_forward_in_sigmoid_form_is_the_tanh_network(policy: MLPPolicy) -> None:
    """forward evaluates the tanh MLP with sigmoid units: same values, same first and second
    derivatives (MAML differentiates through the inner gradient) as the module's layers."""
    policy.update_normalizer(torch.randn(50, 3) * 2 + 1)
    obs = torch.randn(40, 3) * 3
    params = list(policy.parameters())

    def value_grads_and_curvature(fn):
        out = fn(obs)
        loss = (out.sin() * torch.linspace(-1, 1, out.shape[-1])).sum()
        grads = torch.autograd.grad(loss, params, create_graph=True, allow_unused=True,
                                    materialize_grads=True)  # log_std: not in forward
        curvature = torch.autograd.grad(sum((g * g).sum() for g in grads), params,
                                        allow_unused=True, materialize_grads=True)
        return [out, *grads, *curvature]

    fast = value_grads_and_curvature(policy)
    reference = value_grads_and_curvature(lambda x: module_layers_output(policy, x))
    for got, want in zip(fast, reference, strict=True):  # equal up to float rounding
        assert (got - want).abs().max() <= 1e-5 * want.abs().max() + 1e-7


def test_export_traces_the_module_layers(policy: MLPPolicy) -> None:
    """While exporting, forward is the module's own Linear/Tanh graph (ONNX gets ``Tanh``)."""
    program = torch.export.export(policy, (torch.zeros(4, 3),))
    targets = {str(node.target) for node in program.graph.nodes if node.op == "call_function"}
    assert any("tanh" in target for target in targets)
    assert not any("sigmoid" in target for target in targets)


def test_forward_of_another_body_runs_its_modules() -> None:
    """A body that is not Linear/Tanh pairs is evaluated as it is (no sigmoid rewrite)."""
    torch.manual_seed(0)
    policy = MLPPolicy(OBS, DISCRETE, (6,))
    policy.body[1] = torch.nn.ReLU()
    obs = torch.randn(10, 3)
    assert torch.equal(policy(obs), module_layers_output(policy, obs))
