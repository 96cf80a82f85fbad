"""MLP policies built from gymnasium spaces, run functionally with ``torch.func``.

A :class:`MLPPolicy` maps (normalised) observations to the parameters of an action
distribution: a categorical head for ``Discrete`` actions, a diagonal Gaussian with a
state-independent ``log_std`` parameter for ``Box`` actions. Meta-learning never mutates the
module's parameters inside the inner loop; it passes a ``params`` dict instead::

    params = policy_params(policy)                      # {name: tensor}
    dist = distribution_params(policy, params, obs)     # (logits,) or (mean, log_std)
    log_prob, entropy = evaluate_actions(policy, params, obs, actions)

Observation normalisation (running mean / variance) lives in buffers: it is updated from
sampled observations with :meth:`MLPPolicy.update_normalizer`, is never differentiated and is
not part of ``params``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import gymnasium
import torch
from torch import nn
from torch.func import functional_call

from ..errors import GameadaptError
from . import shard

Params = dict[str, torch.Tensor]
DistParams = tuple[torch.Tensor, ...]

NORMALIZED_OBS_CLIP = 10.0
_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class ActionHead(nn.Module):
    """The action side every policy shares: a categorical (``Discrete``) or diagonal-Gaussian
    (1-D ``Box``) distribution, how its samples become env actions, and the Box's affine map.

    With ``scale_actions`` (default) the Gaussian lives in normalised units: sample ``a`` is
    the env action ``center + scale * a`` of a bounded Box (``a = ±1`` at the bounds), so a
    unit standard deviation explores the whole range whatever its width. Samples are
    unbounded; :meth:`to_env_action` maps them to the env and clips them to the bounds.
    The distribution methods take distribution parameters ``(logits,)`` or
    ``(mean, log_std)`` rather than calling a module, so they are vmap- and batch-friendly.
    """

    # buffers (register_buffer), declared for the type checker
    action_center: torch.Tensor
    action_scale: torch.Tensor
    action_low: torch.Tensor
    action_high: torch.Tensor

    def __init__(self, action_space: gymnasium.spaces.Space, scale_actions: bool = True) -> None:
        super().__init__()
        self.action_space = action_space
        self.discrete = isinstance(action_space, gymnasium.spaces.Discrete)
        if isinstance(action_space, gymnasium.spaces.Discrete):
            self.action_dim = int(action_space.n)
        elif isinstance(action_space, gymnasium.spaces.Box) and len(action_space.shape) == 1:
            self.action_dim = int(action_space.shape[0])
        else:
            raise GameadaptError(f"{type(self).__name__} supports Discrete and 1-D Box action "
                                 f"spaces, got {action_space}")
        for name, value in zip(("action_center", "action_scale", "action_low", "action_high"),
                               _action_affine(action_space, scale_actions)):
            self.register_buffer(name, value, persistent=False)

    def to_env_action(self, actions: torch.Tensor) -> torch.Tensor:
        """Policy actions as the env takes them: indices as they are; Box samples scaled
        (``center + scale * a``) and clipped to the space's bounds."""
        if self.discrete:
            return actions
        env_actions = self.action_center + self.action_scale * actions
        return torch.clamp(env_actions, self.action_low, self.action_high)

    def action_features(self, actions: torch.Tensor) -> torch.Tensor:
        """An action as a network input: one-hot (discrete) or the env action in policy
        units, ``(clip(center + scale a) − center) / scale`` (continuous)."""
        if self.discrete:
            return nn.functional.one_hot(actions.long(), self.action_dim).to(torch.float32)
        return (self.to_env_action(actions) - self.action_center) / self.action_scale

    def log_prob(self, dist: DistParams, actions: torch.Tensor) -> torch.Tensor:
        """Log-probability of ``actions`` under distribution parameters ``dist``."""
        if self.discrete:
            log_p = torch.log_softmax(dist[0], dim=-1)
            return log_p.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)
        mean, log_std = dist
        z = (actions - mean) * torch.exp(-log_std)
        return (-0.5 * z * z - log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self, dist: DistParams) -> torch.Tensor:
        """Entropy of the distribution with parameters ``dist``."""
        if self.discrete:
            log_p = torch.log_softmax(dist[0], dim=-1)
            return -(log_p.exp() * log_p).sum(-1)
        return (dist[1] + 0.5 + _LOG_SQRT_2PI).sum(-1)

    def sample(self, dist: DistParams, generator: torch.Generator | None = None) -> torch.Tensor:
        """Draw actions (long for categorical) with noise from ``generator``."""
        if self.discrete:
            logits = dist[0]
            uniform = shard.uniform(logits.shape, generator, logits.device,
                                    logits.dtype).clamp_min(1e-20)
            return torch.argmax(logits - torch.log(-torch.log(uniform)), dim=-1)
        mean, log_std = dist
        noise = shard.normal(mean.shape, generator, mean.device, mean.dtype)
        return mean + torch.exp(log_std) * noise

    def greedy(self, dist: DistParams) -> torch.Tensor:
        """The most likely action: argmax of the logits or the Gaussian mean."""
        return torch.argmax(dist[0], dim=-1) if self.discrete else dist[0]

    def to_distribution(self, dist: DistParams) -> torch.distributions.Distribution:
        """The matching ``torch.distributions`` object (for analysis, not for vmap)."""
        if self.discrete:
            return torch.distributions.Categorical(logits=dist[0])
        normal = torch.distributions.Normal(dist[0], dist[1].exp())
        return torch.distributions.Independent(normal, 1)



class MLPPolicy(ActionHead):
    """A tanh MLP with a categorical (``Discrete``) or diagonal-Gaussian (``Box``) head.

    ``forward(obs)`` returns the head's output: logits ``[..., n]`` or the Gaussian mean
    ``[..., act_dim]``. The Gaussian's log standard deviation is the parameter ``log_std``.
    Actions follow :class:`ActionHead` (normalised Gaussian units with ``scale_actions``).
    """

    # buffers (register_buffer), declared for the type checker
    obs_mean: torch.Tensor
    obs_var: torch.Tensor
    obs_count: torch.Tensor

    def __init__(self, observation_space: gymnasium.spaces.Space,
                 action_space: gymnasium.spaces.Space, hidden_sizes: Sequence[int] = (64, 64),
                 init_log_std: float = 0.0, scale_actions: bool = True) -> None:
        if not isinstance(observation_space, gymnasium.spaces.Box):
            raise GameadaptError(f"MLPPolicy needs a Box observation space, "
                                 f"got {type(observation_space).__name__}")
        super().__init__(action_space, scale_actions)
        self.obs_dim = int(math.prod(observation_space.shape))
        layers: list[nn.Module] = []
        width = self.obs_dim
        for size in hidden_sizes:
            layers += [nn.Linear(width, int(size)), nn.Tanh()]
            width = int(size)
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(width, self.action_dim)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(init_log_std)))
        self.register_buffer("obs_mean", torch.zeros(self.obs_dim))
        self.register_buffer("obs_var", torch.ones(self.obs_dim))
        self.register_buffer("obs_count", torch.zeros(()))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        """Observations standardised by the running statistics and clipped to +-10."""
        return standardize(obs, self.obs_mean, self.obs_std())

    def obs_std(self) -> torch.Tensor:
        """The running standard deviation the observations are divided by."""
        return torch.sqrt(self.obs_var + 1e-8)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        """Logits (categorical) or the mean (Gaussian) for observations ``[..., obs_dim]``.

        The tanh MLP is evaluated in its sigmoid form (:func:`sigmoid_form`: the same
        function, faster on CPU), except while exporting (``torch.export`` / ONNX), where the
        graph keeps the module's own ``Linear``/``Tanh`` layers.
        """
        x = self.normalize(obs)
        names = tanh_mlp_linears(self)
        if names is None or torch.compiler.is_exporting() or torch.onnx.is_in_onnx_export():
            return self.head(self.body(x))
        linears = [self.get_submodule(name) for name in names]
        layers = sigmoid_form([(_tensor(linear.weight), _tensor(linear.bias))
                               for linear in linears])
        for weight, bias in layers[:-1]:
            x = torch.sigmoid(nn.functional.linear(x, weight, bias))
        return nn.functional.linear(x, *layers[-1])

    @torch.no_grad()
    def update_normalizer(self, obs: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """Merge the statistics of ``obs [..., obs_dim]`` (where ``mask`` is 1) into the buffers."""
        flat = obs.reshape(-1, self.obs_dim).to(torch.float64)
        if mask is not None:
            flat = flat[mask.reshape(-1) > 0]
        count, mean, var = shard.moments(flat)  # over every rank's rows when sharded
        if count == 0:
            return
        old_count = self.obs_count.double()
        total = old_count + count
        delta = mean - self.obs_mean.double()
        new_mean = self.obs_mean.double() + delta * count / total
        m2 = self.obs_var.double() * old_count + var * count + delta**2 * old_count * count / total
        self.obs_mean.copy_(new_mean)
        self.obs_var.copy_(m2 / total)
        self.obs_count.copy_(total)

def _action_affine(space: gymnasium.spaces.Space, scale_actions: bool
                   ) -> tuple[torch.Tensor, ...]:
    """``(center, scale, low, high)`` of a Box (center 0 and scale 1 where unbounded or not
    ``scale_actions``); scalars 0, 1, -inf, inf for other spaces."""
    if not isinstance(space, gymnasium.spaces.Box):
        return (torch.zeros(()), torch.ones(()), torch.tensor(-math.inf), torch.tensor(math.inf))
    low = torch.as_tensor(space.low, dtype=torch.float32)
    high = torch.as_tensor(space.high, dtype=torch.float32)
    bounded = torch.isfinite(low) & torch.isfinite(high) & (high > low) & scale_actions
    center = torch.where(bounded, (high + low) / 2, torch.zeros_like(low))
    scale = torch.where(bounded, (high - low) / 2, torch.ones_like(low))
    return center, scale, low, high


def policy_params(policy: nn.Module) -> Params:
    """The module's own parameters as a ``{name: tensor}`` dict (same tensors, not copies)."""
    return dict(policy.named_parameters())


def distribution_params(policy: MLPPolicy, params: Params, obs: torch.Tensor) -> DistParams:
    """``(logits,)`` or ``(mean, log_std)`` (``log_std`` broadcast to the mean) with ``params``."""
    out = functional_call(policy, params, (obs,))
    if policy.discrete:
        return (out,)
    return out, params["log_std"].expand_as(out)


def standardize(obs: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """``(obs - mean) / std`` clipped to +-10 (:meth:`MLPPolicy.normalize`)."""
    return ((obs - mean) / std).clamp(-NORMALIZED_OBS_CLIP, NORMALIZED_OBS_CLIP)


def _tensor(value: object) -> torch.Tensor:
    """``value`` as a tensor (a Linear's weight or bias; module attributes type as unions)."""
    assert isinstance(value, torch.Tensor)
    return value


def tanh_mlp_linears(policy: MLPPolicy) -> list[str] | None:
    """Names of the ``Linear`` layers (body, then head) when the body is ``Linear``/``Tanh``
    pairs, as :class:`MLPPolicy` builds it; ``None`` for any other body."""
    body = list(policy.body)
    if not all(isinstance(layer, nn.Linear) for layer in body[0::2]) or not all(
            isinstance(layer, nn.Tanh) for layer in body[1::2]) or len(body) % 2:
        return None
    return [f"body.{index}" for index in range(0, len(body), 2)] + ["head"]


def sigmoid_form(layers: Sequence[tuple[torch.Tensor, torch.Tensor]]
                 ) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The ``(weight, bias)`` pairs of a tanh MLP rewritten for sigmoid hidden units.

    ``tanh(z) = 2σ(2z) − 1``: a hidden layer outputs ``s = σ(2z)`` instead of ``tanh(z)`` (its
    weight and bias doubled), and the next layer takes ``2s − 1`` by folding it into its own
    parameters, ``W(2s − 1) + b = (2W)s + (b − W·1)``. The network computes the same function
    (to float rounding), but its only elementwise op per hidden layer is ``sigmoid``, which
    torch's CPU kernels run much faster than ``tanh`` (``docs/performance.md``, "Measured
    reasons behind code choices"; ``tanh`` written as ``2σ(2x) − 1`` costs three more passes
    over the activations). The rewrite is differentiable and works on per-task
    ``[M, out, in]`` / ``[M, out]`` stacks as well.
    """
    rewritten = []
    for index, (weight, bias) in enumerate(layers):
        if index > 0:
            weight, bias = weight * 2, bias - weight.sum(-1)
        if index < len(layers) - 1:
            weight, bias = weight * 2, bias * 2
        rewritten.append((weight, bias))
    return rewritten


def task_batched_policy(policy: MLPPolicy, params: Params
                        ) -> Callable[[torch.Tensor], DistParams]:
    """``obs [M, E, obs_dim] -> dist``: ``vmap(distribution_params)`` over the task dim, as
    batched matmuls, for per-task ``params`` with a leading ``[M]`` dim.

    Rollouts evaluate the policy once per time step, where vmap's per-call overhead would
    dominate small policies; everything that does not change during a round (the weights
    in :func:`sigmoid_form`, laid out for ``baddbmm``; the normaliser's statistics) is
    prepared here once. The Gaussian's ``log_std`` comes as ``[M, 1, act_dim]``,
    broadcastable to the mean (the distribution methods broadcast).
    """
    names = tanh_mlp_linears(policy)
    if names is None:
        raise GameadaptError("task_batched_policy expects MLPPolicy's Linear/Tanh body")
    layers = [(bias.unsqueeze(1), weight.transpose(1, 2)) for weight, bias in sigmoid_form(
        [(params[f"{name}.weight"], params[f"{name}.bias"]) for name in names])]
    mean, std = policy.obs_mean, policy.obs_std()
    log_std = None if policy.discrete else params["log_std"].unsqueeze(1)

    def distribution(obs: torch.Tensor) -> DistParams:
        x = standardize(obs, mean, std)
        for bias, weight_t in layers[:-1]:
            x = torch.sigmoid(torch.baddbmm(bias, x, weight_t))
        out = torch.baddbmm(layers[-1][0], x, layers[-1][1])
        return (out,) if log_std is None else (out, log_std)

    return distribution


def evaluate_actions(policy: MLPPolicy, params: Params, obs: torch.Tensor,
                     actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-probabilities and entropies of ``actions`` at ``obs`` under ``params``."""
    dist = distribution_params(policy, params, obs)
    return policy.log_prob(dist, actions), policy.entropy(dist)


@torch.no_grad()
def greedy_action(policy: MLPPolicy, obs: torch.Tensor,
                  params: Params | None = None) -> torch.Tensor:
    """The greedy env action for ``obs`` with ``params`` (default: the module's parameters).

    The argmax index, or the Gaussian mean through :meth:`MLPPolicy.to_env_action`.
    """
    dist = distribution_params(policy, params if params is not None else policy_params(policy), obs)
    return policy.to_env_action(policy.greedy(dist))


def detached(params: Params) -> Params:
    """The same values without autograd history (the one place parameters are detached)."""
    return {name: value.detach() for name, value in params.items()}


def expand_params(params: Params, num_tasks: int) -> Params:
    """Give every tensor a leading task dimension of size ``num_tasks`` (views, no copies)."""
    return {name: p.unsqueeze(0).expand(num_tasks, *p.shape) for name, p in params.items()}


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """``"auto"`` (CUDA if available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    text = str(name)
    if text == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(text)
    except RuntimeError:
        raise GameadaptError(f"unknown device {text!r}; use auto, cpu or cuda") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise GameadaptError(f"device {text!r} was asked for but CUDA is not available "
                                 f"(torch {torch.__version__}); use --device cpu or auto")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise GameadaptError(f"device {text!r} does not exist "
                                 f"({torch.cuda.device_count()} CUDA device(s))")
    elif device.type != "cpu":
        raise GameadaptError(f"unsupported device {text!r}; use auto, cpu or cuda")
    return device
