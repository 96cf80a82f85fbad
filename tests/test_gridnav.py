"""Tests of the built-in GridNav game: levels, the gymnasium view, the batched view, parity."""

from __future__ import annotations

import inspect
import subprocess
import sys
import textwrap

import gameadapt.games.gridnav as gridnav
import gymnasium
import numpy as np
import pytest
import torch
from gameadapt.errors import VariantError
from gameadapt.game import GameSpec
from gameadapt.games.gridnav import VARIANT_SPACE, GridNavEnv
from gameadapt.games.gridnav.dynamics import CONTROLS, DX, DY
from gameadapt.games.gridnav.levels import (
    distance_map,
    generate_level,
    shortest_path,
    shortest_path_length,
)
from gameadapt.hashrandom import stream_key
from gymnasium.utils.env_checker import check_env

UP, DOWN, LEFT, RIGHT = 0, 1, 2, 3
ACTION_OF_DELTA = {(DX[a], DY[a]): a for a in range(4)}


def registered_spec() -> GameSpec:
    """The spec the plugin registers."""
    specs: list[GameSpec] = []
    gridnav.register_games(register=specs.append)
    return specs[0]


SPEC = registered_spec()


def variant(**values: object) -> dict:
    """A partial variant from keyword values, each routed to its part."""
    out: dict = {"level": {}, "rules": {}}
    for name, value in values.items():
        out[VARIANT_SPACE.by_name[name].part][name] = value
    return out


def open_level_seed(size: int, interior: bool = True) -> int:
    """A seed whose wall-free level starts away from the border."""
    for seed in range(1000):
        x, y = generate_level(seed, size, 0.0).start
        if not interior or (0 < x < size - 1 and 0 < y < size - 1):
            return seed
    raise AssertionError("no interior start found")


# -- levels -------------------------------------------------------------------------------

@pytest.mark.parametrize("size", [5, 6, 7, 8, 9])
@pytest.mark.parametrize("density", [0.0, 0.15, 0.3, 0.35])
def test_levels_are_solvable_and_deterministic(size: int, density: float) -> None:
    for seed in range(60):
        level = generate_level(seed, size, density)
        assert level.walls.shape == (size, size) and level.walls.dtype == bool
        assert level.start != level.goal
        start_goal = abs(level.start[0] - level.goal[0]) + abs(level.start[1] - level.goal[1])
        assert start_goal >= size - 1
        length = shortest_path_length(level.walls, level.start, level.goal)
        assert length is not None and length >= start_goal
        again = generate_level(seed, size, density)
        assert np.array_equal(again.walls, level.walls) and again.start == level.start
        assert again.goal == level.goal


def test_levels_differ_between_seeds() -> None:
    layouts = {generate_level(seed, 7, 0.2).walls.tobytes() for seed in range(20)}
    assert len(layouts) > 15


def test_shortest_path_length() -> None:
    walls = np.zeros((3, 3), dtype=bool)
    walls[1, 0] = walls[1, 1] = True  # a wall across the middle row, open at x = 2
    assert shortest_path_length(walls, (0, 0), (0, 2)) == 6
    assert shortest_path_length(walls, (0, 0), (0, 0)) == 0
    walls[1, 2] = True
    assert shortest_path_length(walls, (0, 0), (0, 2)) is None


@pytest.mark.parametrize("size,density", [(5, 0.0), (7, 0.15), (9, 0.35)])
def test_distance_map_matches_shortest_paths(size: int, density: float) -> None:
    for seed in range(10):
        level = generate_level(seed, size, density)
        distance = distance_map(level.walls, level.goal)
        assert distance.shape == (size, size) and distance.dtype == np.int64
        assert distance[level.goal[1], level.goal[0]] == 0
        for y in range(size):
            for x in range(size):
                length = shortest_path_length(level.walls, (x, y), level.goal)
                assert distance[y, x] == (-1 if length is None else length), (seed, x, y)


# -- single view --------------------------------------------------------------------------

@pytest.mark.parametrize("values", [
    {},
    {"size": 9, "wall_density": 0.3, "controls": "rotated_90", "slip": 0.4, "seed": 17},
    {"size": 5, "controls": "antitransposed", "slip": 0.2, "time_limit": 5},
])
def test_check_env(values: dict) -> None:
    check_env(GridNavEnv(variant(**values)), skip_render_check=True)


def test_render_ansi_and_human(capsys: pytest.CaptureFixture[str]) -> None:
    env = GridNavEnv(variant(size=6, seed=3), render_mode="ansi")
    env.reset(seed=0)
    text = env.render()
    assert isinstance(text, str)
    rows = text.strip().split("\n")
    assert len(rows) == 6 and all(len(row) == 6 for row in rows)
    assert text.count("A") == 1 and text.count("G") == 1
    assert set(text) <= set("#.AG\n")
    human = GridNavEnv(variant(size=6, seed=3), render_mode="human")
    human.reset(seed=0)
    assert human.render() is None
    assert capsys.readouterr().out.count("A") == 2  # printed by reset and by render
    with pytest.raises(ValueError):
        GridNavEnv(render_mode="rgb_array")


def test_gymnasium_make() -> None:
    env = gymnasium.make("gameadapt/GridNav-v0", variant=variant(size=5, slip=0.1))
    obs, info = env.reset(seed=4)
    assert obs.shape == (9,) and obs.dtype == np.float32
    assert env.unwrapped.variant["level"]["size"] == 5
    obs, reward, terminated, truncated, info = env.step(RIGHT)
    assert env.observation_space.contains(obs)
    env.close()


def test_check_env_with_render_modes() -> None:
    env = gymnasium.make("gameadapt/GridNav-v0", variant=variant(slip=0.2), render_mode="ansi")
    check_env(env.unwrapped)  # also builds the env in every other render mode via its spec


def test_invalid_variant_rejected() -> None:
    with pytest.raises(VariantError):
        GridNavEnv(variant(size=12))
    with pytest.raises(VariantError):
        GridNavEnv(variant(controls="diagonal"))


def test_observation_features() -> None:
    env = GridNavEnv(variant(size=7, seed=5, wall_density=0.25, time_limit=20))
    obs, _ = env.reset(seed=0)
    level = generate_level(5, 7, 0.25)
    (ax, ay), (gx, gy) = level.start, level.goal
    padded = np.ones((9, 9), dtype=bool)
    padded[1:8, 1:8] = level.walls
    expected = [ax / 6, ay / 6, (gx - ax) / 6, (gy - ay) / 6,
                padded[ay, ax + 1], padded[ay + 2, ax + 1],  # up, down
                padded[ay + 1, ax], padded[ay + 1, ax + 2], 0.0]  # left, right, t
    np.testing.assert_allclose(obs, np.array(expected, dtype=np.float32), rtol=1e-6)
    obs, *_ = env.step(UP)
    assert obs[8] == pytest.approx(1 / 20)


@pytest.mark.parametrize("controls", list(CONTROLS))
def test_control_mapping(controls: str) -> None:
    # The symmetries as 2x2 matrices acting on (dx, dy), with y pointing down.
    matrices = {
        "normal": [[1, 0], [0, 1]], "rotated_90": [[0, -1], [1, 0]],
        "rotated_180": [[-1, 0], [0, -1]], "rotated_270": [[0, 1], [-1, 0]],
        "mirrored": [[-1, 0], [0, 1]], "flipped": [[1, 0], [0, -1]],
        "transposed": [[0, 1], [1, 0]], "antitransposed": [[0, -1], [-1, 0]],
    }
    seed = open_level_seed(7)
    for action in range(4):
        env = GridNavEnv(variant(seed=seed, wall_density=0.0, controls=controls))
        before, _ = env.reset(seed=0)
        after, *_ = env.step(action)
        moved = tuple(int(round(v)) for v in (after[:2] - before[:2]) * 6)
        expected = tuple(int(v) for v in np.array(matrices[controls]) @ (DX[action], DY[action]))
        assert moved == expected, (controls, action)


def test_mirrored_left_moves_right() -> None:
    env = GridNavEnv(variant(seed=open_level_seed(7), wall_density=0.0, controls="mirrored"))
    before, _ = env.reset(seed=0)
    after, *_ = env.step(LEFT)
    assert after[0] > before[0] and after[1] == before[1]


def test_walls_and_border_block_moves() -> None:
    env = GridNavEnv(variant(seed=open_level_seed(5), size=5, wall_density=0.0, time_limit=50))
    env.reset(seed=0)
    for _ in range(6):
        obs, *_ = env.step(UP)
    assert obs[1] == 0.0 and obs[4] == 1.0  # on the top row, border above
    obs2, *_ = env.step(UP)
    assert np.array_equal(obs2[:8], obs[:8])


def test_time_limit_truncation() -> None:
    # size 7: the goal is >= 6 moves away, so 5 steps can never reach it
    env = GridNavEnv(variant(size=7, time_limit=5, step_cost=0.05, slip=0.5, progress_reward=0.0))
    env.reset(seed=1)
    for t in range(1, 6):
        obs, reward, terminated, truncated, _ = env.step(t % 4)
        assert not terminated
        assert truncated == (t == 5)
        assert reward == pytest.approx(-0.05)
    assert obs[8] == 1.0


@pytest.mark.parametrize("controls", ["normal", "rotated_270"])
def test_goal_reward_on_shortest_path(controls: str) -> None:
    values = dict(seed=42, size=8, wall_density=0.3, goal_reward=2.5, step_cost=0.1,
                  progress_reward=0.25, controls=controls)
    level = generate_level(42, 8, 0.3)
    path = shortest_path(level.walls, level.start, level.goal)
    assert path is not None
    inverse = {actual: intended for intended, actual in enumerate(CONTROLS[controls])}
    env = GridNavEnv(variant(**values))
    env.reset(seed=0)
    for i, (a, b) in enumerate(zip(path, path[1:])):
        action = inverse[ACTION_OF_DELTA[(b[0] - a[0], b[1] - a[1])]]
        obs, reward, terminated, truncated, _ = env.step(action)
        last = i == len(path) - 2
        assert terminated == last and not truncated
        assert reward == pytest.approx(2.65 if last else 0.15)  # every move is progress
    assert obs[2] == 0.0 and obs[3] == 0.0


def test_is_success_on_the_step_that_reaches_the_goal_only() -> None:
    env = GridNavEnv(variant(seed=42, size=8, wall_density=0.3, time_limit=200))
    env.reset(seed=0)
    infos = []
    while True:
        *_, terminated, truncated, info = env.step(env.reference_action())
        infos.append(info["is_success"])
        if terminated or truncated:
            break
    assert terminated and infos == [False] * (len(infos) - 1) + [True]
    env = GridNavEnv(variant(size=7, time_limit=5))  # the goal is >= 6 moves away
    env.reset(seed=0)
    for _ in range(5):
        *_, terminated, truncated, info = env.step(env.reference_action())
        assert info == {"is_success": False}
    assert truncated and not terminated


@pytest.mark.parametrize("controls", list(CONTROLS))
def test_reference_follows_a_shortest_path_under_the_true_controls(controls: str) -> None:
    from gameadapt.train.upper_bound import reference_returns

    values = dict(seed=42, size=8, wall_density=0.3, goal_reward=2.5, step_cost=0.1,
                  progress_reward=0.25, controls=controls)
    level = generate_level(42, 8, 0.3)
    assert shortest_path_length(level.walls, level.start, level.goal) == 7
    returns, success = reference_returns(SPEC, [variant(**values)], 3, seed=0)
    assert success is not None and bool(success.all())
    # 7 moves, each one of progress: 7 * (0.25 - 0.1) + the goal's 2.5
    np.testing.assert_allclose(returns.numpy(), np.full((1, 3), 3.55), atol=1e-5)


def test_reference_reaches_the_goal_on_every_slip_free_variant() -> None:
    from gameadapt.train.upper_bound import reference_returns

    space = SPEC.variant_space
    variants = [space.parse_assignments(["rules.slip=0", "rules.time_limit=200",
                                         f"level.wall_density={d}", f"level.size={size}"], v)
                for v, d, size in zip(space.sample("test", 24, seed=3), [0.0, 0.2, 0.35] * 8,
                                      [5, 7, 9] * 8)]
    returns, success = reference_returns(SPEC, variants, 2, seed=1)
    assert success is not None and bool(success.all())
    for v, row in zip(variants, returns):  # and by a shortest path: the analytic return
        level = generate_level(v["level"]["seed"], v["level"]["size"], v["level"]["wall_density"])
        length = shortest_path_length(level.walls, level.start, level.goal)
        assert length is not None
        np.testing.assert_allclose(row.numpy(), 1.0 + 0.09 * length, atol=1e-5)


def test_reference_is_deterministic_and_recovers_from_slips() -> None:
    env = GridNavEnv(variant(seed=7, size=9, wall_density=0.2, slip=0.5, time_limit=200,
                             controls="transposed"))
    for seed in range(5):
        env.reset(seed=seed)
        actions, terminated = [], False
        while not terminated:
            first, second = env.reference_action(), env.reference_action()
            assert first == second
            actions.append(first)
            *_, terminated, truncated, _ = env.step(first)
            assert not truncated
        assert len(actions) > 0


def test_progress_reward_signs_and_sum() -> None:
    # an open level: the shortest-path distance is the Manhattan distance
    seed = open_level_seed(7)
    level = generate_level(seed, 7, 0.0)
    (ax, ay), (gx, _) = level.start, level.goal
    toward = RIGHT if gx > ax else LEFT
    away = LEFT if toward == RIGHT else RIGHT
    env = GridNavEnv(variant(seed=seed, wall_density=0.0, step_cost=0.01, progress_reward=0.3,
                             time_limit=200))
    env.reset(seed=0)
    assert env.step(toward)[1] == pytest.approx(0.29)
    assert env.step(away)[1] == pytest.approx(-0.31)
    for _ in range(7):  # into the border: blocked moves make no progress
        obs, reward, *_ = env.step(UP)
    assert obs[1] == 0.0 and reward == pytest.approx(-0.01)
    # undiscounted, the shaping telescopes: random walks earn 0.3 * (start - final distance)
    rng = np.random.default_rng(0)
    distance = distance_map(level.walls, level.goal)
    for episode in range(5):
        env = GridNavEnv(variant(seed=seed, wall_density=0.0, step_cost=0.0, goal_reward=1.0,
                                 progress_reward=0.3, slip=0.2, time_limit=30))
        env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            obs, reward, terminated, truncated, _ = env.step(int(rng.integers(4)))
            total += reward
            done = terminated or truncated
        x, y = (int(round(v * 6)) for v in obs[:2])
        expected = 0.3 * (distance[ay, ax] - distance[y, x]) + (1.0 if terminated else 0.0)
        assert total == pytest.approx(expected, abs=1e-5)


def test_slip_changes_moves_and_is_seeded() -> None:
    def moves(seed: int, stream: int, slip: float) -> list[tuple[float, ...]]:
        env = GridNavEnv(variant(seed=open_level_seed(9), size=9, wall_density=0.0,
                                 slip=slip, time_limit=200))
        env.reset(seed=seed, options={"stream": stream})
        return [tuple(env.step(RIGHT if t % 2 else LEFT)[0][:2]) for t in range(60)]

    assert moves(3, 0, 0.5) == moves(3, 0, 0.5)
    assert moves(3, 0, 0.5) != moves(3, 1, 0.5)
    assert moves(3, 0, 0.5) != moves(3, 0, 0.0)


def test_torch_is_never_imported() -> None:
    code = textwrap.dedent("""
        import sys
        import gymnasium
        import gameadapt.games.gridnav as gridnav
        specs = []
        gridnav.register_games(register=specs.append)
        env = gymnasium.make("gameadapt/GridNav-v0", variant={"rules": {"slip": 0.2}},
                             render_mode="ansi")
        for episode in range(3):
            env.reset(seed=episode)
            done = False
            while not done:
                _, _, terminated, truncated, _ = env.step(env.action_space.sample())
                done = terminated or truncated
            env.render()
        assert "torch" not in sys.modules, "torch was imported"
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- registration -------------------------------------------------------------------------

def test_game_spec() -> None:
    specs: list = []
    gridnav.register_games(register=specs.append)
    assert len(specs) == 1
    spec = specs[0]
    assert spec.id == "gridnav" and spec.api == "native" and spec.gym_id == "gameadapt/GridNav-v0"
    assert spec.make_batched is not None and spec.is_discrete
    assert spec.action_space == gymnasium.spaces.Discrete(4)
    assert spec.observation_space == gymnasium.spaces.Box(-1.0, 1.0, (9,), np.float32)
    assert spec.variant_space is VARIANT_SPACE
    train = spec.variant_space.sample("train", 50, seed=0)
    test = spec.variant_space.sample("test", 50, seed=0)
    for v in train + test:
        assert spec.variant_space.validate(v, partial=False) == v
    # the control mapping is what adaptation identifies: all 8 in both splits
    assert {v["rules"]["controls"] for v in train} == set(CONTROLS)
    assert {v["rules"]["controls"] for v in test} == set(CONTROLS)
    # held out: the levels and the slip values
    assert all(0.0 <= v["rules"]["slip"] <= 0.1 for v in train)
    assert all(0.1 <= v["rules"]["slip"] <= 0.2 for v in test)
    assert all(v["level"]["seed"] < 10_000 for v in train)
    assert all(10_000 <= v["level"]["seed"] < 20_000 for v in test)
    assert isinstance(spec.make_env(train[0]), GridNavEnv)
    assert spec.to_json()["batched"] is True
    assert spec.success == "reached the goal" and inspect.unwrap(spec.reference) is gridnav.reference
    assert spec.to_json()["success"] == "reached the goal" and spec.to_json()["reference"] is True


def test_builtin_registry_loads_gridnav() -> None:
    from gameadapt.host.registry import Registry

    registry = Registry().load(builtins=("gameadapt.games.gridnav",))
    assert registry.plugins["gridnav"].ok, registry.plugins["gridnav"].errors
    assert registry.game("gridnav").gym_id == "gameadapt/GridNav-v0"


# -- batched view -------------------------------------------------------------------------

PARITY_VARIANTS = [
    variant(seed=11, size=5, wall_density=0.2, controls="rotated_90", slip=0.3, time_limit=12),
    variant(seed=222, size=9, wall_density=0.35, controls="mirrored", slip=0.3, time_limit=20,
            goal_reward=3.0, step_cost=0.05, progress_reward=0.37),
    variant(seed=3333, size=7, controls="antitransposed", slip=0.3, time_limit=16,
            step_cost=0.0, progress_reward=0.0),
]


def test_batched_stream_keys_match_hashrandom() -> None:
    from gameadapt.batched import batch_stream_keys
    from gameadapt.hashrandom import stream_keys

    index = torch.arange(50, dtype=torch.int64)
    for seed in (0, 7, 2**40 + 3):
        keys = stream_keys(seed, index).tolist()
        assert keys == [stream_key(seed, i) for i in range(50)]
        grid = batch_stream_keys(seed, 5, 10, "cpu")
        assert grid.shape == (5, 10) and grid.flatten().tolist() == keys


def mixed_actions(obs: torch.Tensor, rng: np.random.Generator) -> np.ndarray:
    """Mostly head for the goal (undoing each task's controls), sometimes act randomly."""
    delta = obs[..., 2:4].numpy()
    horizontal = np.abs(delta[..., 0]) >= np.abs(delta[..., 1])
    actual = np.where(horizontal, np.where(delta[..., 0] > 0, RIGHT, LEFT),
                      np.where(delta[..., 1] > 0, DOWN, UP))
    inverse = np.array([np.argsort(CONTROLS[v["rules"]["controls"]]) for v in PARITY_VARIANTS])
    greedy = np.take_along_axis(inverse, actual, axis=1)
    return np.where(rng.random(actual.shape) < 0.3, rng.integers(0, 4, actual.shape), greedy)


@pytest.mark.parametrize("seed", [0, 5, 6])
def test_batched_matches_single_view(seed: int) -> None:
    E = 4
    steps = 30  # longer than every time limit
    batch = gridnav.make_batched(PARITY_VARIANTS, E, "cpu")
    assert (batch.num_tasks, batch.envs_per_task, batch.horizon) == (3, E, 20)
    rng = np.random.default_rng(seed)
    obs = batch.reset(seed)
    assert obs.shape == (3, E, 9) and obs.dtype == torch.float32
    singles = [[GridNavEnv(v) for _ in range(E)] for v in PARITY_VARIANTS]
    for m in range(3):
        for e in range(E):
            single_obs, _ = singles[m][e].reset(seed=seed, options={"stream": m * E + e})
            assert np.array_equal(obs[m, e].numpy(), single_obs)
    done = np.zeros((3, E), dtype=bool)
    ends = {"terminated": 0, "truncated": 0}
    for t in range(steps):
        prev, actions = obs, mixed_actions(obs, rng)
        out = batch.step(torch.as_tensor(actions))
        obs = out.observation
        assert out.reward.dtype == torch.float32 and out.terminated.dtype == torch.bool
        assert out.success is not None and out.success.dtype == torch.bool
        for m in range(3):
            for e in range(E):
                if done[m, e]:  # frozen: nothing changes, nothing is reported
                    assert np.array_equal(obs[m, e].numpy(), prev[m, e].numpy())
                    assert out.reward[m, e].item() == 0.0
                    assert not out.terminated[m, e] and not out.truncated[m, e]
                    assert not out.success[m, e]
                    continue
                o, r, term, trunc, info = singles[m][e].step(int(actions[m, e]))
                assert np.array_equal(obs[m, e].numpy(), o), (t, m, e)
                assert np.array_equal(out.reward[m, e].numpy(), np.float32(r)), (t, m, e)
                assert bool(out.terminated[m, e]) == term and bool(out.truncated[m, e]) == trunc
                assert bool(out.success[m, e]) is info["is_success"] is term, (t, m, e)
                if term or trunc:
                    done[m, e] = True
                    ends["terminated" if term else "truncated"] += 1
    assert done.all()
    assert ends["terminated"] > 0 and ends["truncated"] > 0, ends


def test_batched_reaches_goal_and_is_reproducible() -> None:
    level = generate_level(42, 8, 0.3)
    path = shortest_path(level.walls, level.start, level.goal)
    assert path is not None
    plan = [ACTION_OF_DELTA[(b[0] - a[0], b[1] - a[1])] for a, b in zip(path, path[1:])]
    v = variant(seed=42, size=8, wall_density=0.3, goal_reward=2.0, step_cost=0.0,
                progress_reward=0.0)
    batch = gridnav.make_batched([v, v], 2, "cpu")
    batch.reset(0)
    total = torch.zeros(2, 2)
    terminated = torch.zeros(2, 2, dtype=torch.bool)
    for action in plan:
        out = batch.step(torch.full((2, 2), action, dtype=torch.long))
        total += out.reward
        terminated |= out.terminated
    assert terminated.all() and torch.equal(total, torch.full((2, 2), 2.0))
    first = batch.reset(9)
    a = [batch.step(torch.randint(0, 4, (2, 2), generator=torch.Generator().manual_seed(i)))
         for i in range(10)]
    assert torch.equal(batch.reset(9), first)
    b = [batch.step(torch.randint(0, 4, (2, 2), generator=torch.Generator().manual_seed(i)))
         for i in range(10)]
    for x, y in zip(a, b):
        assert all(torch.equal(p, q) for p, q in zip(x, y))


def test_batched_rejects_bad_input() -> None:
    batch = gridnav.make_batched([variant()], 2, "cpu")
    with pytest.raises(RuntimeError):
        batch.step(torch.zeros(1, 2, dtype=torch.long))
    batch.reset(0)
    with pytest.raises(ValueError):
        batch.step(torch.zeros(2, 2, dtype=torch.long))
    with pytest.raises(VariantError):
        gridnav.make_batched([variant(slip=0.9)], 2, "cpu")
