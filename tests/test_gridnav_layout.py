"""gridnav's ``level.layout``: an explicit level as text, read and written back, refused with
one line when it is not a level, and played the same in the single and the batched view."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.errors import VariantError
from gameadapt.games import gridnav
from gameadapt.games.gridnav import VARIANT_SPACE, GridNavEnv
from gameadapt.games.gridnav.levels import generate_level, layout_of, level_of, parse_layout

LAYOUT = "A..../.###./...#./.#.../....G"
EDITED = ["A.#...G/..#..../..#.##./......./.####../......./.......",
          "#####/#A..#/###.#/#G..#/#####",
          "G......../.#######./.#......./.#.#####./.#.#...#./.#.#.#.#./.#...#.#./"
          ".#####.#./A......#."]


def test_a_layout_round_trips_and_describes_its_level() -> None:
    level = parse_layout(LAYOUT)
    assert level.size == 5 and level.start == (0, 0) and level.goal == (4, 4)
    assert level.walls[1].tolist() == [False, True, True, True, False]
    assert layout_of(level) == LAYOUT
    for seed, size, density in [(0, 5, 0.0), (3, 7, 0.15), (99, 9, 0.35), (12345, 6, 0.3)]:
        generated = generate_level(seed, size, density)
        again = parse_layout(layout_of(generated))
        assert np.array_equal(again.walls, generated.walls)
        assert (again.start, again.goal) == (generated.start, generated.goal)


def test_a_layout_is_the_level_and_the_generator_settings_are_ignored() -> None:
    variant = VARIANT_SPACE.validate({"level": {"layout": LAYOUT, "seed": 5, "size": 9}})
    assert variant["level"]["layout"] == LAYOUT
    assert layout_of(level_of(variant["level"])) == LAYOUT
    assert VARIANT_SPACE.default()["level"]["layout"] == ""
    default = VARIANT_SPACE.validate({})
    assert layout_of(level_of(default["level"])) == layout_of(generate_level(0, 7, 0.15))
    env = GridNavEnv(variant, render_mode="ansi")
    env.reset(seed=0)
    assert env.render() == LAYOUT.replace("/", "\n") + "\n"


@pytest.mark.parametrize("text, fragment", [
    ("A.../..../..../...G", "5 to 9 rows separated by '/', got 4"),
    ("A..../...../...../...../...G", "row 4 has 4 cells, there are 5 rows"),
    ("A..../..x../...../...../....G", "row 1 has 'x': use . floor, # wall, A start, G goal"),
    ("A..../...../...../...../.....", "exactly one G (the goal), got 0"),
    ("AA.../...../...../...../....G", "exactly one A (the start), got 2"),
    ("A..#./...#./...#./...#./...#G", "the goal G cannot be reached from the start A"),
    (5, "expected a string, got 5"),
    ("." * 100, "100 characters, more than the limit of 89"),
])
def test_a_bad_layout_is_one_variant_error_naming_the_problem(text: object,
                                                              fragment: str) -> None:
    with pytest.raises(VariantError) as caught:
        VARIANT_SPACE.validate({"level": {"layout": text}})
    message = str(caught.value)
    assert message.startswith("level.layout: ") and fragment in message and "\n" not in message


def test_the_cli_takes_a_layout_and_refuses_a_bad_one_in_one_line() -> None:
    runner = CliRunner()
    good = runner.invoke(cli, ["games", "play", "gridnav", "--steps", "2", "-v",
                               f"level.layout={EDITED[1]}"])
    assert good.exit_code == 0, good.output
    assert "#A..#" in good.output
    bad = runner.invoke(cli, ["games", "play", "gridnav", "--steps", "2", "-v",
                              "level.layout=A..../..x../...../...../....G"])
    assert bad.exit_code != 0 and bad.output.count("\n") == 1
    assert bad.output.startswith("Error: level.layout: row 1 has 'x'"), bad.output
    shown = runner.invoke(cli, ["games", "show", "gridnav"])
    assert "level.layout" in shown.output and "text: rows of . # A G" in shown.output


def test_a_layout_variant_plays_the_same_in_the_single_and_the_batched_view() -> None:
    variants = [VARIANT_SPACE.validate({"level": {"layout": text},
                                        "rules": {"controls": controls, "slip": 0.3,
                                                  "time_limit": 25}})
                for text, controls in zip([LAYOUT, *EDITED], ["normal", "mirrored",
                                                              "rotated_90", "transposed"])]
    envs, seed = 3, 17
    batch = gridnav.make_batched(variants, envs, "cpu")
    obs = batch.reset(seed)
    singles = [[GridNavEnv(v) for _ in range(envs)] for v in variants]
    for m, row in enumerate(singles):
        for e, env in enumerate(row):
            first, _ = env.reset(seed=seed, options={"stream": m * envs + e})
            assert np.array_equal(obs[m, e].numpy(), first)
    rng = np.random.default_rng(0)
    done = np.zeros((len(variants), envs), dtype=bool)
    goals = 0
    for _ in range(25):
        towards = np.array([[env.reference_action() for env in row] for row in singles])
        actions = np.where(rng.random(done.shape) < 0.3, rng.integers(0, 4, done.shape), towards)
        out = batch.step(torch.as_tensor(actions))
        for m, row in enumerate(singles):
            for e, env in enumerate(row):
                if done[m, e]:
                    continue
                o, r, term, trunc, _ = env.step(int(actions[m, e]))
                assert np.array_equal(out.observation[m, e].numpy(), o)
                assert np.float32(out.reward[m, e].item()) == np.float32(r)
                assert (bool(out.terminated[m, e]), bool(out.truncated[m, e])) == (term, trunc)
                done[m, e] = term or trunc
                goals += int(term)
    assert done.all() and goals > 0
