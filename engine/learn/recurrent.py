"""The recurrent policy of the RL² family: a GRU core over (observation, previous action,
previous reward, episode start), with a policy head and a value head.

The GRU's update is written out (:func:`gru_update`: matrix products, sigmoid, tanh) and
every caller uses it: the batched rollout one step at a time, training over whole trials
(:meth:`RecurrentPolicy.unroll`, the input projection of every step in one product), and the
ONNX export. Its parameters are an ``nn.GRUCell``'s, so torch's own cell is the reference
it is tested against. A step's input is::

    [observation, previous action, previous reward, episode start]

where the previous action is one-hot (discrete; all zeros before the first action of a
trial) or the env action in policy units (continuous, ``(a - center) / scale``; zeros at the
start), and the state is zeros at the start of a trial (a new variant). Within a trial the
state, the previous action and the previous reward carry over from one episode to the next;
``episode start`` is 1 on the first step of every episode.
"""

from __future__ import annotations

import math

import gymnasium
import torch
from torch import nn

from ..errors import GameadaptError
from .policy import ActionHead, DistParams
from .ppo import ReturnScaled
from .trials import LatentMode


def gru_update(input_gates: torch.Tensor, state: torch.Tensor, weight_hh: torch.Tensor,
               bias_hh: torch.Tensor) -> torch.Tensor:
    """One GRU step from the input's gate pre-activations ``x Wᵢᵀ + bᵢ`` (``[..., 3H]``).

    PyTorch's gate order (reset, update, new): ``r = σ(xᵣ + hᵣ)``, ``z = σ(x_z + h_z)``,
    ``n = tanh(xₙ + r·hₙ)``, ``h' = n + z·(h − n)``, with ``h· = h Wₕᵀ + bₕ``.
    """
    size = state.shape[-1]
    hidden_gates = nn.functional.linear(state, weight_hh, bias_hh)
    reset = torch.sigmoid(input_gates[..., :size] + hidden_gates[..., :size])
    update = torch.sigmoid(input_gates[..., size:2 * size] + hidden_gates[..., size:2 * size])
    new = torch.tanh(input_gates[..., 2 * size:] + reset * hidden_gates[..., 2 * size:])
    return new + update * (state - new)


class RecurrentPolicy(ActionHead, ReturnScaled):
    """GRU core → categorical or Gaussian head and a value head (see the module doc).

    ``hidden_size`` is the state's width; the Gaussian's ``log_std`` is a parameter, as in
    :class:`~gameadapt.learn.policy.MLPPolicy`, and actions follow :class:`ActionHead`. The
    value head estimates returns in units of ``return_scale()``, a running standard
    deviation of the discounted trial returns (buffers, saved in checkpoints, never
    differentiated), so that value and policy losses keep comparable sizes whatever a game's
    reward scale; the policy's inputs take the raw rewards.
    """

    def __init__(self, observation_space: gymnasium.spaces.Space,
                 action_space: gymnasium.spaces.Space, hidden_size: int = 128,
                 init_log_std: float = 0.0, scale_actions: bool = True) -> None:
        if not isinstance(observation_space, gymnasium.spaces.Box):
            raise GameadaptError(f"RecurrentPolicy needs a Box observation space, "
                                 f"got {type(observation_space).__name__}")
        super().__init__(action_space, scale_actions)
        self.obs_dim = int(math.prod(observation_space.shape))
        self.hidden_size = int(hidden_size)
        self.input_size = self.obs_dim + self.action_dim + 2
        self.core = nn.GRUCell(self.input_size, self.hidden_size)
        self.head = nn.Linear(self.hidden_size, self.action_dim)
        self.value_head = nn.Linear(self.hidden_size, 1)
        nn.init.orthogonal_(self.head.weight, gain=0.01)  # near-uniform first policy
        nn.init.zeros_(self.head.bias)
        nn.init.orthogonal_(self.value_head.weight, gain=1.0)
        nn.init.zeros_(self.value_head.bias)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((self.action_dim,), float(init_log_std)))
        self.register_return_scale()

    def trial_memory(self, batch: tuple[int, int], device: torch.device | str,
                     latent: LatentMode = "sample") -> RecurrentMemory:
        """A fresh trial's memory (``latent`` does not apply: RL² has no latent variable)."""
        return RecurrentMemory(self, batch, device)

    # -- inputs ---------------------------------------------------------------------------
    def initial_state(self, *batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The state at the start of a trial: zeros ``[*batch, hidden_size]``."""
        return torch.zeros(*batch, self.hidden_size, device=device)

    def no_action(self, *batch: int, device: torch.device | str = "cpu") -> torch.Tensor:
        """The previous-action features before a trial's first action: zeros."""
        return torch.zeros(*batch, self.action_dim, device=device)

    def step_input(self, observation: torch.Tensor, previous_action: torch.Tensor,
                   previous_reward: torch.Tensor, episode_start: torch.Tensor) -> torch.Tensor:
        """One step's input ``[..., input_size]`` (previous action as features)."""
        return torch.cat([observation, previous_action, previous_reward.unsqueeze(-1),
                          episode_start.unsqueeze(-1)], dim=-1)

    # -- the network ------------------------------------------------------------------------
    def step(self, inputs: torch.Tensor, state: torch.Tensor) -> torch.Tensor:
        """The next state ``[..., H]`` from one step's input and the current state."""
        gates = nn.functional.linear(inputs, self.core.weight_ih, self.core.bias_ih)
        return gru_update(gates, state, self.core.weight_hh, self.core.bias_hh)

    def heads(self, state: torch.Tensor) -> tuple[DistParams, torch.Tensor]:
        """Distribution parameters and the value estimate ``[...]`` at ``state``."""
        out = self.head(state)
        dist = (out,) if self.discrete else (out, self.log_std.expand_as(out))
        return dist, self.value_head(state).squeeze(-1)

    def unroll(self, inputs: torch.Tensor, mask: torch.Tensor) -> tuple[DistParams, torch.Tensor]:
        """Distributions and values at every step of trials ``inputs [S, B, input_size]``.

        The state starts at zeros and is updated only where ``mask [S, B]`` is 1 (a step of
        an episode); masked steps (an env waiting for the next episode) keep it, so the
        state flows from an episode's last step to the next episode's first.
        """
        gates = nn.functional.linear(inputs, self.core.weight_ih, self.core.bias_ih)
        state = self.initial_state(inputs.shape[1], device=inputs.device)
        states = []
        # unbind, not gates[t]: each indexing's backward would write a full-size gradient
        for step_gates, live in zip(gates.unbind(0), (mask > 0).unsqueeze(-1).unbind(0)):
            proposal = gru_update(step_gates, state, self.core.weight_hh, self.core.bias_hh)
            state = torch.where(live, proposal, state)
            states.append(state)
        return self.heads(torch.stack(states))


class RecurrentMemory:
    """The :class:`~gameadapt.learn.trials.TrialMemory` of RL²: the GRU state, the previous
    action and reward (carried across episodes) and the episode-start flag; a step's record
    is the GRU input it read."""

    def __init__(self, policy: RecurrentPolicy, batch: tuple[int, int],
                 device: torch.device | str) -> None:
        self.policy = policy
        self.state = policy.initial_state(*batch, device=device)
        self.previous_action = policy.no_action(*batch, device=device)
        self.previous_reward = torch.zeros(batch, device=device)
        self.start = torch.ones(batch, device=device)
        self.inputs = torch.empty(0)

    def start_episode(self, generator: torch.Generator) -> None:
        """Raise the episode-start flag for the next step (no noise drawn)."""
        self.start = torch.ones_like(self.start)

    def act(self, observation: torch.Tensor, alive: torch.Tensor
            ) -> tuple[DistParams, torch.Tensor]:
        """Advance the state on this step's input (live envs only) and read the heads."""
        self.inputs = self.policy.step_input(observation, self.previous_action,
                                             self.previous_reward, self.start)
        self.state = torch.where(alive.unsqueeze(-1), self.policy.step(self.inputs, self.state),
                                 self.state)
        return self.policy.heads(self.state)

    def observe(self, actions: torch.Tensor, reward: torch.Tensor,
                next_observation: torch.Tensor, alive: torch.Tensor) -> torch.Tensor:
        """Keep the action and reward for the next step's input; returns this step's input."""
        self.previous_action = torch.where(alive.unsqueeze(-1),
                                           self.policy.action_features(actions),
                                           self.previous_action)
        self.previous_reward = torch.where(alive, reward, self.previous_reward)
        self.start = torch.zeros_like(self.start)
        return self.inputs
