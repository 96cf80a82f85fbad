"""Tests of the built-in Duel game: arenas, the PettingZoo view, the batched view, parity."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap
import warnings
from typing import Any

import gameadapt.games.duel as duel
import gymnasium
import numpy as np
import pytest
import torch
from gameadapt.errors import VariantError
from gameadapt.games.duel import AGENTS, VARIANT_SPACE, DuelParallelEnv
from gameadapt.games.duel.dynamics import OPPONENTS, TEST_OPPONENTS, TRAIN_OPPONENTS
from gameadapt.games.duel.levels import generate_arena, is_playable
from gameadapt.games.gridnav.levels import shortest_path
from gameadapt.hashrandom import stream_key, uniform
from gymnasium.utils.env_checker import check_env
from pettingzoo.test import parallel_api_test, parallel_seed_test

STAY, FORWARD, BACK, LEFT, RIGHT = range(5)


def variant(**values: object) -> dict:
    """A partial variant from keyword values, each routed to its part."""
    out: dict = {"level": {}, "rules": {}}
    for name, value in values.items():
        out[VARIANT_SPACE.by_name[name].part][name] = value
    return out


def open_arena(**values: object) -> dict:
    """A wall-free 9 x 9 arena: attacker at (4, 8), defender at (4, 3), flags (0, 0), (8, 0)."""
    return variant(size=9, wall_density=0.0, **values)


def cells(env: DuelParallelEnv) -> tuple[tuple[int, int], tuple[int, int]]:
    """Global ``(attacker cell, defender cell)``, decoded from :meth:`DuelParallelEnv.state`."""
    state = env.state()
    last = env.variant["level"]["size"] - 1
    ax, ay, bx, by = (int(round(v * last)) for v in state[[0, 1, 15, 16]])
    return (ax, ay), (last - bx, last - by)


def play(env: DuelParallelEnv, attacker_moves: list[int], defender_moves: list[int] | None = None
         ) -> list[tuple]:
    """Step with the given attacker moves and the given (else scripted) defender moves."""
    results = []
    for t, move in enumerate(attacker_moves):
        defender = env.scripted_action("defender") if defender_moves is None \
            else defender_moves[t]
        results.append(env.step({"attacker": move, "defender": defender}))
    return results


# -- arenas -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [7, 8, 9, 10, 11])
@pytest.mark.parametrize("density", [0.0, 0.1, 0.3])
def test_arenas_are_playable_and_deterministic(size: int, density: float) -> None:
    for seed in range(40):
        arena = generate_arena(seed, size, density)
        assert arena.walls.shape == (size, size) and arena.walls.dtype == bool
        assert arena.flags == ((0, 0), (size - 1, 0))
        assert arena.starts == ((size // 2, size - 1), (size // 2, 1 + size // 4))
        assert is_playable(arena)
        for start in arena.starts:
            assert not arena.walls[start[1], start[0]]
            for flag in arena.flags:
                assert shortest_path(arena.walls, start, flag) is not None, (seed, start, flag)
        again = generate_arena(seed, size, density)
        assert np.array_equal(again.walls, arena.walls)


def test_arenas_differ_between_seeds() -> None:
    layouts = {generate_arena(seed, 9, 0.2).walls.tobytes() for seed in range(20)}
    assert len(layouts) > 15


# -- PettingZoo view ----------------------------------------------------------------------

API_VARIANTS = [variant(opponent=style) for style in OPPONENTS] + [
    variant(size=7, wall_density=0.3, opponent="mirroring", defender_speed=0.2, view_radius=0,
            time_limit=5),
    variant(size=11, seed=123, opponent="patrolling", defender_speed=1.0, view_radius=20,
            time_limit=100),
]


@pytest.mark.parametrize("values", API_VARIANTS)
def test_parallel_api(values: dict) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        parallel_api_test(DuelParallelEnv(values), num_cycles=200)
    parallel_seed_test(lambda: DuelParallelEnv(values), num_cycles=50)


def test_spaces_metadata_and_errors() -> None:
    env = DuelParallelEnv()
    assert env.metadata["name"] == "duel_v0" and env.metadata["is_parallelizable"]
    assert env.possible_agents == list(AGENTS) and env.agents == []
    for agent in AGENTS:
        assert env.observation_space(agent) is env.observation_space(agent)
        assert env.observation_space(agent) == gymnasium.spaces.Box(-1, 1, (15,), np.float32)
        assert env.action_space(agent) == gymnasium.spaces.Discrete(5)
    with pytest.raises(ValueError):
        env.scripted_action("attacker")
    observations, infos = env.reset(seed=0)
    assert set(observations) == set(infos) == set(AGENTS) and env.agents == list(AGENTS)
    assert env.state_space.contains(env.state())
    assert all(env.observation_space(a).contains(o) for a, o in observations.items())
    with pytest.raises(ValueError):
        env.step({"attacker": 0})
    with pytest.raises(ValueError):
        env.step({"attacker": 5, "defender": 0})
    with pytest.raises(ValueError):
        DuelParallelEnv(render_mode="rgb_array")


def test_invalid_variant_rejected() -> None:
    for values in (variant(size=12), variant(opponent="sneaky"), variant(defender_speed=0.1)):
        with pytest.raises(VariantError):
            DuelParallelEnv(values)
        with pytest.raises(VariantError):
            duel.make_batched([values], 2, "cpu")


def test_render_ansi_and_human(capsys: pytest.CaptureFixture[str]) -> None:
    env = DuelParallelEnv(variant(size=8, seed=3), render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    rows = text.strip().split("\n")
    assert len(rows) == 8 and all(len(row) == 8 for row in rows)
    assert rows[0][0] == "W" and rows[0][-1] == "E"
    assert rows[7][4] == "A" and rows[3][4] == "D"
    assert set(text) <= set("#.WEAD\n")
    human = DuelParallelEnv(variant(size=8, seed=3), render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert capsys.readouterr().out.count("A") == 2  # printed by reset and by render


def test_observations_at_reset_are_mirror_images() -> None:
    env = DuelParallelEnv(open_arena(view_radius=20, time_limit=20))
    obs, _ = env.reset(seed=0)
    # attacker at (4, 8); defender at (4, 3), i.e. (4, 5) in its own frame; scale 8
    attacker = [0.5, 1.0, -0.5, -1.0, 0.5, -1.0, 1.0, 0.0, -0.625, 0, 1, 0, 0, 0.0, 0.0]
    defender = [0.5, 0.625, -0.5, 0.375, 0.5, 0.375, 1.0, 0.0, -0.625, 0, 0, 0, 0, 0.0, 1.0]
    np.testing.assert_array_equal(obs["attacker"], np.array(attacker, dtype=np.float32))
    np.testing.assert_array_equal(obs["defender"], np.array(defender, dtype=np.float32))
    # the flag on each one's left is half the arena to its left: west for one, east for the other
    assert obs["attacker"][2] == obs["defender"][2] and obs["attacker"][4] == obs["defender"][4]
    # each sees the other straight ahead
    assert obs["attacker"][8] < 0 and obs["defender"][8] < 0


def test_defender_frame_is_rotated() -> None:
    env = DuelParallelEnv(open_arena(view_radius=20, opponent="defensive_east"))
    env.reset(seed=0)
    results = play(env, [STAY] * 4, [LEFT] * 4)  # the defender's left is the global right
    obs = results[-1][0]["defender"]
    assert cells(env) == ((4, 8), (8, 3))
    assert obs[0] == 0.0 and obs[1] == 0.625  # own frame: (8 - 8, 8 - 3) / 8
    assert obs[11] == 1.0 and obs[12] == 0.0  # the border is on its left
    obs, *_ = env.step({"attacker": STAY, "defender": FORWARD})  # global down
    assert cells(env) == ((4, 8), (8, 4))


def test_wall_bits_in_own_frame() -> None:
    values = variant(size=10, seed=7, wall_density=0.3, view_radius=20, time_limit=100,
                     opponent="mirroring")
    arena = generate_arena(7, 10, 0.3)
    padded = np.ones((12, 12), dtype=bool)
    padded[1:11, 1:11] = arena.walls
    env = DuelParallelEnv(values)
    rng = np.random.default_rng(0)
    obs, _ = env.reset(seed=0)
    for _ in range(40):
        (ax, ay), (bx, by) = cells(env)
        # forward, back, left, right: attacker up, down, left, right; defender the opposite
        for (x, y), agent, sign in (((ax, ay), "attacker", 1), ((bx, by), "defender", -1)):
            near = [padded[y + 1 - sign, x + 1], padded[y + 1 + sign, x + 1],
                    padded[y + 1, x + 1 - sign], padded[y + 1, x + 1 + sign]]
            np.testing.assert_array_equal(obs[agent][9:13], np.array(near, dtype=np.float32))
        if not env.agents:
            break
        obs, *_ = env.step({"attacker": int(rng.integers(5)), "defender": int(rng.integers(5))})


@pytest.mark.parametrize("radius,visible", [(0, False), (4, False), (5, True), (20, True)])
def test_view_radius(radius: int, visible: bool) -> None:
    env = DuelParallelEnv(open_arena(view_radius=radius))
    obs, _ = env.reset(seed=0)  # Chebyshev distance 5
    for agent in AGENTS:
        assert obs[agent][6] == float(visible)
        assert (obs[agent][7:9] != 0).any() == visible
    obs, *_ = env.step({"attacker": STAY, "defender": LEFT})  # to (5, 3): still Chebyshev 5
    assert obs["attacker"][6] == obs["defender"][6] == float(visible)


def test_defensive_defender_guards_its_flag() -> None:
    for style, flag in (("defensive_west", (0, 0)), ("defensive_east", (8, 0))):
        env = DuelParallelEnv(open_arena(opponent=style, defender_speed=1.0))
        env.reset(seed=0)
        # ties go to the first move in action order: back (global up) before right
        assert env.scripted_action("defender") == BACK
        trail = []
        for _ in range(12):
            play(env, [STAY])
            trail.append(cells(env)[1])
        assert trail[6] == flag and set(trail[6:]) == {flag}, trail  # 7 moves, then stays
        assert cells(env)[0] == (4, 8) and env.agents


def test_defender_speed_slows_it_down() -> None:
    def arrival(speed: float, stream: int) -> int:
        env = DuelParallelEnv(open_arena(opponent="defensive_west", defender_speed=speed,
                                         time_limit=100))
        env.reset(seed=1, options={"stream": stream})
        for t in range(1, 101):
            play(env, [STAY])
            if cells(env)[1] == (0, 0):
                return t
        raise AssertionError("the defender never arrived")

    assert {arrival(1.0, stream) for stream in range(5)} == {7}
    slow = [arrival(0.5, stream) for stream in range(5)]
    assert all(t >= 7 for t in slow) and np.mean(slow) > 9, slow


def test_defender_speed_draws_uniform_at_t() -> None:
    env = DuelParallelEnv(open_arena(opponent="aggressive", defender_speed=0.5))
    env.reset(seed=3, options={"stream": 2})
    key = np.array([stream_key(3, 2)], dtype=np.int64)
    stays = [float(uniform(np, key, t)[0]) >= 0.5 for t in range(4)]
    assert any(stays) and not all(stays)
    for t in range(4):
        assert (env.scripted_action("defender") == STAY) == stays[t], t
        play(env, [STAY])


def test_aggressive_defender_chases_and_tags() -> None:
    env = DuelParallelEnv(open_arena(opponent="aggressive", defender_speed=1.0, tag_penalty=1.5,
                                     step_cost=0.0, progress_reward=0.0))
    env.reset(seed=0)
    distances = []
    while env.agents:
        _, rewards, terminations, truncations, _ = play(env, [STAY])[0]
        (ax, ay), (bx, by) = cells(env)
        distances.append(abs(ax - bx) + abs(ay - by))
    assert distances == [4, 3, 2, 1]
    assert terminations == {"attacker": True, "defender": True}
    assert rewards == {"attacker": -1.5, "defender": 1.5}
    assert not any(truncations.values())


def test_mirroring_defender_repeats_mirrored_action() -> None:
    env = DuelParallelEnv(open_arena(opponent="mirroring", defender_speed=1.0))
    env.reset(seed=0)
    assert env.scripted_action("defender") == STAY  # nothing to mirror at t = 0
    for move, defender_cell in ((LEFT, (4, 3)), (FORWARD, (5, 3)), (RIGHT, (5, 4)),
                                (BACK, (4, 4)), (STAY, (4, 3))):
        play(env, [move])
        assert cells(env)[1] == defender_cell
        assert env.scripted_action("defender") == move


def test_patrolling_defender_walks_between_flags() -> None:
    env = DuelParallelEnv(open_arena(opponent="patrolling", defender_speed=1.0, time_limit=40))
    env.reset(seed=0)
    trail = []
    for _ in range(30):
        play(env, [STAY])
        trail.append(cells(env)[1])
    assert trail[6] == (0, 0) and trail[14] == (8, 0) and trail[22] == (0, 0)
    assert trail[7] == (1, 0) and trail[15] == (7, 0)


def test_capture_and_progress_rewards() -> None:
    values = open_arena(opponent="defensive_east", defender_speed=1.0, capture_reward=2.5,
                        step_cost=0.01, progress_reward=0.25)
    env = DuelParallelEnv(values)
    env.reset(seed=0)
    results = play(env, [LEFT] * 4 + [FORWARD] * 8)  # 12 moves to the west flag
    for _, rewards, terminations, truncations, _ in results[:-1]:
        assert rewards["attacker"] == pytest.approx(0.24) and rewards["defender"] == 0.0
        assert not any(terminations.values()) and not any(truncations.values())
    _, rewards, terminations, truncations, _ = results[-1]
    assert rewards["attacker"] == pytest.approx(2.5 + 0.24)
    assert rewards["defender"] == -2.5
    assert terminations == {"attacker": True, "defender": True} and env.agents == []
    with pytest.raises(RuntimeError):
        env.step({"attacker": STAY, "defender": STAY})
    env.reset(seed=0)
    _, rewards, *_ = env.step({"attacker": RIGHT, "defender": STAY})
    _, rewards2, *_ = env.step({"attacker": LEFT, "defender": STAY})  # back: no nearer
    _, rewards3, *_ = env.step({"attacker": BACK, "defender": STAY})  # into the border
    assert rewards["attacker"] == pytest.approx(0.24)
    assert rewards2["attacker"] == pytest.approx(-0.26)
    assert rewards3["attacker"] == pytest.approx(-0.01)


def flag_race(last_defender_move: int) -> tuple:
    """Defender to (0, 1), attacker round to (1, 0); then the attacker steps onto the flag."""
    env = DuelParallelEnv(open_arena(step_cost=0.0, progress_reward=0.0, capture_reward=2.0,
                                     tag_penalty=3.0))
    env.reset(seed=0)
    attacker = [RIGHT] * 2 + [FORWARD] * 8 + [LEFT] * 5
    defender = [RIGHT] * 4 + [BACK] * 2 + [STAY] * 9  # global left, then up
    results = play(env, attacker, defender)
    assert cells(env) == ((1, 0), (0, 1))
    assert not any(any(r[2].values()) or any(r[3].values()) for r in results)
    return env.step({"attacker": LEFT, "defender": last_defender_move})


def test_capture_beats_tag_unless_the_flag_is_occupied() -> None:
    _, rewards, terminations, *_ = flag_race(STAY)  # on the flag, the defender adjacent
    assert rewards == {"attacker": 2.0, "defender": -2.0} and all(terminations.values())
    _, rewards, terminations, *_ = flag_race(BACK)  # both step onto the flag: tagged
    assert rewards == {"attacker": -3.0, "defender": 3.0} and all(terminations.values())


def test_is_success_is_each_agents_win() -> None:
    _, _, terminations, _, infos = flag_race(STAY)  # a capture: the attacker's win
    assert all(terminations.values())
    assert infos == {"attacker": {"is_success": True}, "defender": {"is_success": False}}
    _, _, terminations, _, infos = flag_race(BACK)  # a tag on the flag: the defender's win
    assert infos == {"attacker": {"is_success": False}, "defender": {"is_success": True}}
    env = DuelParallelEnv(open_arena(opponent="defensive_east", time_limit=5))
    env.reset(seed=0)
    for _, _, _, truncations, infos in play(env, [STAY] * 5):  # a time-out: nobody's
        assert infos == {agent: {"is_success": False} for agent in AGENTS}
    assert all(truncations.values())


def test_time_limit_truncation() -> None:
    env = DuelParallelEnv(open_arena(opponent="defensive_east", time_limit=5, step_cost=0.05,
                                     progress_reward=0.0))
    env.reset(seed=1)
    for t in range(1, 6):
        obs, rewards, terminations, truncations, _ = play(env, [STAY])[0]
        assert not any(terminations.values())
        assert truncations == dict.fromkeys(AGENTS, t == 5)
        assert rewards == {"attacker": pytest.approx(-0.05), "defender": 0.0}
    assert obs["attacker"][13] == 1.0 and obs["defender"][13] == 1.0
    assert env.agents == []


# -- the learner's gymnasium view -----------------------------------------------------------

@pytest.mark.parametrize("values", API_VARIANTS[::2])
def test_check_env(values: dict) -> None:
    check_env(duel.make_env(values), skip_render_check=True)


def test_make_env_plays_the_scripted_defender() -> None:
    values = open_arena(opponent="aggressive", defender_speed=1.0, step_cost=0.0,
                        progress_reward=0.0)
    env = gymnasium.make("gameadapt/Duel-v0", variant=values, render_mode="ansi")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (15,) and obs[14] == 0.0
    rewards = []
    terminated = False
    while not terminated:
        obs, reward, terminated, truncated, _ = env.step(STAY)
        rewards.append(reward)
    assert rewards == [0.0, 0.0, 0.0, -1.0]  # tagged after 4 steps (see the chase test)
    assert "A" in env.render()


# -- the reference attacker ----------------------------------------------------------------

def reference_episode(values: dict, seed: int = 0) -> tuple[list[tuple[int, int]], dict]:
    """The attacker's cells over one episode of the reference, and the last step's info."""
    env = duel.make_env(values)
    obs, _ = env.reset(seed=seed)
    full = VARIANT_SPACE.validate(values)
    trail, done = [], False
    while not done:
        obs, _, terminated, truncated, info = env.step(duel.reference(env, obs, full))
        trail.append(cells(env.unwrapped.parallel_env)[0])
        done = terminated or truncated
    return trail, info


@pytest.mark.parametrize("style, flag", [("defensive_west", (8, 0)), ("defensive_east", (0, 0))])
def test_reference_runs_for_the_unguarded_flag(style: str, flag: tuple[int, int]) -> None:
    for seed in range(3):
        trail, info = reference_episode(open_arena(opponent=style, defender_speed=0.9), seed)
        assert info["is_success"] and trail[-1] == flag and len(trail) == 12  # a shortest path


@pytest.mark.parametrize("style", ["mirroring", "patrolling", "aggressive"])
def test_reference_goes_round_a_defender_that_tags_a_shortest_path(style: str) -> None:
    values = open_arena(opponent=style, defender_speed=1.0)
    env = duel.make_env(values)
    env.reset(seed=0)
    for move in [FORWARD] * 8 + [LEFT] * 4:  # straight up, then along the top to the flag
        _, _, terminated, truncated, info = env.step(move)
        if terminated or truncated:
            break
    assert terminated and not info["is_success"]  # tagged on the way
    trail, info = reference_episode(values)
    assert info["is_success"] and trail[-1] in ((0, 0), (8, 0)) and len(trail) <= 13


@pytest.mark.parametrize("seed", [0, 1])
def test_reference_steps_aside_from_a_mirroring_defender_it_cannot_pass(seed: int) -> None:
    # walls around the middle column: going up there meets the mirror image head-on
    trail, info = reference_episode(variant(seed=15752, opponent="mirroring",
                                            defender_speed=0.73), seed)
    assert info["is_success"] and len(trail) < 20


def test_reference_is_deterministic_and_mostly_wins() -> None:
    from gameadapt.train.upper_bound import reference_returns

    spec = duel_spec()
    variants = spec.variant_space.sample("train", 3, seed=2) + spec.variant_space.sample(
        "test", 3, seed=2)
    returns, success = reference_returns(spec, variants, 3, seed=5)
    again, success_again = reference_returns(spec, variants, 3, seed=5)
    assert torch.equal(returns, again) and success is not None and success_again is not None
    assert torch.equal(success, success_again) and success.float().mean() >= 0.8
    env = spec.make_env(variants[-1])
    env.reset(seed=0)
    parallel = env.unwrapped.parallel_env
    assert parallel.reference_action() == parallel.reference_action()


def duel_spec() -> Any:
    """The spec the plugin registers."""
    specs: list = []
    duel.register_games(register=specs.append)
    return specs[0]


# -- batched view -------------------------------------------------------------------------

PARITY_VARIANTS = [
    variant(seed=11, size=7, wall_density=0.3, opponent="aggressive", defender_speed=0.6,
            view_radius=2, time_limit=12),
    variant(seed=222, size=11, wall_density=0.2, opponent="defensive_west", view_radius=5,
            capture_reward=3.0, tag_penalty=0.5, step_cost=0.05, progress_reward=0.37,
            time_limit=20),
    variant(seed=3333, size=9, opponent="defensive_east", defender_speed=1.0, view_radius=0,
            time_limit=16, step_cost=0.0, progress_reward=0.0),
    variant(seed=44, size=8, wall_density=0.25, opponent="patrolling", defender_speed=0.2,
            view_radius=20, time_limit=25),
    variant(seed=5, size=10, opponent="mirroring", time_limit=18, tag_penalty=2.0),
] + VARIANT_SPACE.sample("train", 3, seed=1) + VARIANT_SPACE.sample("test", 3, seed=1)


def mixed_actions(observation: np.ndarray, role: np.ndarray, rng: np.random.Generator
                  ) -> np.ndarray:
    """Head for the nearer flag (attackers) or the other agent (defenders), or act randomly."""
    flag = np.where((np.abs(observation[..., 2:4]).sum(-1) <=
                     np.abs(observation[..., 4:6]).sum(-1))[..., None],
                    observation[..., 2:4], observation[..., 4:6])
    goal = np.where(role[..., None] > 0, observation[..., 7:9], flag)
    horizontal = np.abs(goal[..., 0]) >= np.abs(goal[..., 1])
    greedy = np.where(horizontal, np.where(goal[..., 0] > 0, RIGHT, LEFT),
                      np.where(goal[..., 1] > 0, BACK, FORWARD))
    return np.where(rng.random(greedy.shape) < 0.4, rng.integers(0, 5, greedy.shape), greedy)


@pytest.mark.parametrize("agents", [("attacker", "defender"), ("defender", "attacker"),
                                    ("attacker",)])
@pytest.mark.parametrize("seed", [0, 7])
def test_batched_matches_parallel_env(agents: tuple[str, ...], seed: int) -> None:
    E, C, M = 3, len(agents), len(PARITY_VARIANTS)
    batch = duel.make_batched(PARITY_VARIANTS, E, "cpu", agents)
    assert (batch.num_tasks, batch.envs, batch.envs_per_task) == (M, E, E * C)
    assert batch.agents == agents and batch.horizon == max(
        VARIANT_SPACE.validate(v)["rules"]["time_limit"] for v in PARITY_VARIANTS)
    rng = np.random.default_rng(seed)
    obs = batch.reset(seed)
    assert obs.shape == (M, E * C, 15) and obs.dtype == torch.float32
    envs = [[DuelParallelEnv(v) for _ in range(E)] for v in PARITY_VARIANTS]
    for m in range(M):
        for e in range(E):
            single, _ = envs[m][e].reset(seed=seed, options={"stream": m * E + e})
            for c, agent in enumerate(agents):
                assert np.array_equal(obs[m, e * C + c].numpy(), single[agent])
    done = np.zeros((M, E), dtype=bool)
    ends = {"capture": 0, "tag": 0, "truncated": 0}
    for t in range(batch.horizon + 2):
        prev = obs.numpy()
        actions = mixed_actions(prev, prev[..., 14], rng)
        out = batch.step(torch.as_tensor(actions))
        obs = out.observation
        assert out.reward.shape == out.terminated.shape == (M, E * C)
        assert out.reward.dtype == torch.float32 and out.truncated.dtype == torch.bool
        assert out.success is not None and out.success.shape == (M, E * C)
        assert not (out.success & ~out.terminated).any()  # a win ends the episode
        for m in range(M):
            for e in range(E):
                rows = slice(e * C, e * C + C)
                if done[m, e]:  # frozen: nothing changes, nothing is reported
                    assert np.array_equal(obs[m, rows].numpy(), prev[m, rows])
                    assert not out.reward[m, rows].any() and not out.terminated[m, rows].any()
                    assert not out.truncated[m, rows].any() and not out.success[m, rows].any()
                    continue
                env = envs[m][e]
                chosen = dict(zip(agents, actions[m, rows].tolist()))
                chosen.setdefault("defender", env.scripted_action("defender"))
                single, rewards, terms, truncs, infos = env.step(chosen)
                won = {"attacker": rewards["defender"] < 0, "defender": rewards["defender"] > 0}
                for c, agent in enumerate(agents):
                    row = e * C + c
                    assert np.array_equal(obs[m, row].numpy(), single[agent]), (t, m, e, agent)
                    assert out.reward[m, row].item() == np.float32(rewards[agent]), (t, m, e)
                    assert bool(out.terminated[m, row]) == terms[agent]
                    assert bool(out.truncated[m, row]) == truncs[agent]
                    assert bool(out.success[m, row]) is infos[agent]["is_success"], (t, m, e)
                    assert infos[agent]["is_success"] is (terms[agent] and won[agent])
                if not env.agents:
                    done[m, e] = True
                    ends["truncated" if truncs["attacker"] else
                         "capture" if rewards["defender"] < 0 else "tag"] += 1
    assert done.all()
    assert all(count > 0 for count in ends.values()), ends


def test_batched_rejects_bad_input() -> None:
    for agents in ((), ("defender",), ("attacker", "attacker"), ("attacker", "referee")):
        with pytest.raises(ValueError):
            duel.make_batched([variant()], 2, "cpu", agents)
    batch = duel.make_batched([variant()], 2, "cpu", ("attacker", "defender"))
    with pytest.raises(RuntimeError):
        batch.step(torch.zeros(1, 4, dtype=torch.long))
    batch.reset(0)
    with pytest.raises(ValueError):
        batch.step(torch.zeros(1, 2, dtype=torch.long))


def test_batched_is_reproducible() -> None:
    batch = duel.make_batched(PARITY_VARIANTS[:3], 4, "cpu", ("attacker", "defender"))

    def run() -> list[torch.Tensor]:
        tensors = [batch.reset(9)]
        generator = torch.Generator().manual_seed(0)
        for _ in range(10):
            tensors += batch.step(torch.randint(0, 5, (3, 8), generator=generator))
        return tensors

    assert all(torch.equal(a, b) for a, b in zip(run(), run()))


# -- registration, imports ----------------------------------------------------------------

def test_game_spec() -> None:
    specs: list = []
    duel.register_games(register=specs.append)
    assert len(specs) == 1
    spec = specs[0]
    assert spec.id == "duel" and spec.api == "pettingzoo" and spec.gym_id == "gameadapt/Duel-v0"
    assert spec.agents == AGENTS and spec.learner == "attacker" and spec.is_discrete
    assert spec.action_space == gymnasium.spaces.Discrete(5)
    assert spec.observation_space == gymnasium.spaces.Box(-1.0, 1.0, (15,), np.float32)
    assert spec.variant_space is VARIANT_SPACE and spec.make_batched is not None
    assert spec.max_episode_steps == 100
    train = spec.variant_space.sample("train", 60, seed=0)
    test = spec.variant_space.sample("test", 60, seed=0)
    for v in train + test:
        assert spec.variant_space.validate(v, partial=False) == v
    # held out: the defender's styles and the arenas
    assert {v["rules"]["opponent"] for v in train} == set(TRAIN_OPPONENTS)
    assert {v["rules"]["opponent"] for v in test} == set(TEST_OPPONENTS)
    assert all(v["level"]["seed"] < 10_000 for v in train)
    assert all(10_000 <= v["level"]["seed"] < 20_000 for v in test)
    assert all(0.6 <= v["rules"]["defender_speed"] <= 0.9 for v in train + test)
    env = spec.make_parallel_env(test[0])
    env.reset(seed=0)
    assert spec.opponent(env, "defender", None, test[0]) == env.scripted_action("defender")
    assert spec.to_json()["agents"] == list(AGENTS)
    assert spec.success == duel.SUCCESS and inspect.unwrap(spec.reference) is duel.reference
    assert spec.to_json()["success"] == duel.SUCCESS and spec.to_json()["reference"] is True


def test_builtin_registry_loads_duel() -> None:
    from gameadapt.host.registry import Registry

    registry = Registry().load(builtins=("gameadapt.games.duel",))
    assert registry.plugins["duel"].ok, registry.plugins["duel"].errors
    assert registry.game("duel").gym_id == "gameadapt/Duel-v0"


def test_torch_is_never_imported() -> None:
    code = textwrap.dedent("""
        import sys
        import gymnasium
        import gameadapt.games.duel as duel
        specs = []
        duel.register_games(register=specs.append)
        env = duel.make_parallel_env({"rules": {"opponent": "patrolling"}}, render_mode="ansi")
        for episode in range(3):
            env.reset(seed=episode)
            while env.agents:
                env.step({"attacker": env.action_space("attacker").sample(),
                          "defender": env.scripted_action("defender")})
            env.render()
        single = gymnasium.make("gameadapt/Duel-v0", variant={"rules": {"view_radius": 1}})
        single.reset(seed=0)
        single.step(1)
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
