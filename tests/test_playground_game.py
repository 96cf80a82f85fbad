"""The browser playground's JavaScript GridNav (engine/ship/web/gridnav.mjs) against the
Python game, step for step: generated and edited layouts, every control mapping, slip 0 and
above, fixed seeds and random actions. Observations must be bit for bit equal, rewards equal
as float32, and the episode ends on the same step for the same reason."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from gameadapt.games.gridnav import GridNavEnv
from gameadapt.games.gridnav.dynamics import CONTROLS
from gameadapt.games.gridnav.levels import generate_level, layout_of, parse_layout

from jsenv import ROOT, require_js

GAME_MODULE = ROOT / "engine" / "ship" / "web" / "gridnav.mjs"

DRIVER = """
import { readFileSync } from "node:fs";
import { GridNav, parseLayout, layoutOf, streamKey, uniform } from "%s";
const cases = JSON.parse(readFileSync(0, "utf8"));
const played = cases.games.map((game) => {
  const level = parseLayout(game.layout);
  const env = new GridNav(level, game.rules);
  return game.episodes.map(({ seed, actions }) => {
    const steps = [{ observation: Array.from(env.reset(BigInt(seed))) }];
    for (const action of actions) {
      const out = env.step(action);
      steps.push({ observation: Array.from(out.observation), reward: out.reward,
                   terminated: out.terminated, truncated: out.truncated });
      if (out.terminated || out.truncated) break;
    }
    return { layout: layoutOf(level), steps };
  });
});
const errors = cases.bad.map((text) => {
  try { parseLayout(text); return null; } catch (error) { return error.message; }
});
const keys = cases.keys.map(([seed, index]) => streamKey(BigInt(seed), index).toString());
const uniforms = cases.keys.map(([seed, index]) => uniform(streamKey(BigInt(seed), 0), index));
process.stdout.write(JSON.stringify({ played, errors, keys, uniforms }));
"""

BAD_LAYOUTS = [
    "A.../..../..../...G",  # 4 rows
    "A....../......./......./......./......./......./......./......./......G/.......",
    "A..../...../...../...../...G",  # row 4 is short
    "A..../..x../...../...../....G",
    "A..../...../...../...../.....",  # no goal
    "AA.../...../...../...../....G",
    "A..../...../...../.....#/...#G",
    "A..#./...#./...#./...#./...#G",  # cut off by a wall
    "A.G../...../...../..G../.....",
]


def edited(layout: str, rng: np.random.Generator, edits: int) -> str:
    """``layout`` with up to ``edits`` random cells toggled (wall <-> floor) or the goal
    moved, every intermediate layout a valid one."""
    rows = [list(row) for row in layout.split("/")]
    size = len(rows)
    for _ in range(edits):
        x, y = (int(v) for v in rng.integers(size, size=2))
        trial = [row[:] for row in rows]
        if trial[y][x] in ".#":
            if rng.random() < 0.2:  # move the goal here
                for row in trial:
                    row[:] = ["." if c == "G" else c for c in row]
                trial[y][x] = "G"
            else:
                trial[y][x] = "." if trial[y][x] == "#" else "#"
        text = "/".join("".join(row) for row in trial)
        try:
            parse_layout(text)
        except ValueError:
            continue
        rows = trial
    return "/".join("".join(row) for row in rows)


def make_cases() -> list[dict[str, Any]]:
    rng = np.random.default_rng(2024)
    games = []
    controls = sorted(CONTROLS)
    for index in range(24):
        size = int(rng.integers(5, 10))
        density = float(rng.choice([0.0, 0.15, 0.3, 0.35]))
        layout = layout_of(generate_level(int(rng.integers(20_000)), size, density))
        if index % 2:
            layout = edited(layout, rng, 12)
        rules = {"controls": controls[index % len(controls)],
                 "slip": 0.0 if index % 3 == 0 else float(rng.choice([0.1, 0.3, 0.5])),
                 "goal_reward": float(rng.uniform(0.1, 10.0)),
                 "progress_reward": float(rng.choice([0.0, 0.1, 0.37])),
                 "step_cost": float(rng.uniform(0.0, 0.2)),
                 "time_limit": int(rng.integers(5, 40))}
        episodes = [{"seed": int(rng.integers(2**62)) if e else e,
                     "actions": rng.integers(0, 4, rules["time_limit"]).tolist()}
                    for e in range(3)]
        games.append({"layout": layout, "rules": rules, "episodes": episodes})
    return games


def python_episode(layout: str, rules: dict[str, Any], seed: int, actions: list[int]
                   ) -> list[dict[str, Any]]:
    env = GridNavEnv({"level": {"layout": layout}, "rules": rules})
    observation, _ = env.reset(seed=seed)
    steps: list[dict[str, Any]] = [{"observation": observation}]
    for action in actions:
        observation, reward, terminated, truncated, _ = env.step(action)
        steps.append({"observation": observation, "reward": reward, "terminated": terminated,
                      "truncated": truncated})
        if terminated or truncated:
            break
    return steps


def as_strings(cases: dict[str, Any]) -> dict[str, Any]:
    """``cases`` with every seed written as a decimal string."""
    games = [{**game, "episodes": [{**e, "seed": str(e["seed"])} for e in game["episodes"]]}
             for game in cases["games"]]
    return {**cases, "games": games, "keys": [[str(seed), index] for seed, index in cases["keys"]]}


@pytest.fixture(scope="module")
def js_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], dict[str, Any]]:
    node = require_js()
    folder = tmp_path_factory.mktemp("gridnav_js")
    script = folder / "driver.mjs"
    script.write_text(DRIVER % GAME_MODULE.as_uri(), encoding="utf-8")
    keys = [[0, 0], [7, 3], [2**62 + 5, 41], [123456789, 2**40]]
    cases = {"games": make_cases(), "bad": BAD_LAYOUTS, "keys": keys}
    text = json.dumps(as_strings(cases))  # seeds above 2**53 travel as text (read as BigInt)
    result = subprocess.run([node, str(script)], input=text, capture_output=True,
                            text=True, check=False, timeout=120)
    assert result.returncode == 0, result.stderr
    return cases, json.loads(result.stdout)


def test_js_random_numbers_are_hashrandom_s(js_run: tuple[dict, dict]) -> None:
    from gameadapt.hashrandom import stream_key, uniform

    cases, out = js_run
    for (seed, index), key, value in zip(cases["keys"], out["keys"], out["uniforms"]):
        assert int(key) == stream_key(seed, index) % 2**64
        expected = uniform(np, np.array([stream_key(seed, 0)], np.int64), index)[0]
        assert np.float32(value) == expected


def test_js_game_steps_like_the_python_game(js_run: tuple[dict, dict]) -> None:
    cases, out = js_run
    counts = {"steps": 0, "terminated": 0, "truncated": 0, "slipped_games": 0}
    for game, played in zip(cases["games"], out["played"]):
        for episode, js in zip(game["episodes"], played):
            assert js["layout"] == game["layout"]
            py = python_episode(game["layout"], game["rules"], episode["seed"],
                                episode["actions"])
            assert len(js["steps"]) == len(py), (game, episode["seed"])
            for t, (a, b) in enumerate(zip(js["steps"], py)):
                where = (game["layout"], game["rules"]["controls"], episode["seed"], t)
                assert np.array_equal(np.asarray(a["observation"], np.float32),
                                      b["observation"]), where
                assert np.asarray(a["observation"], np.float64).tolist() == \
                    b["observation"].astype(np.float64).tolist(), where  # no rounding on the way
                if t:
                    assert np.float32(a["reward"]) == np.float32(b["reward"]), where
                    assert a["reward"] == pytest.approx(b["reward"], abs=1e-6), where
                    assert (a["terminated"], a["truncated"]) == (b["terminated"],
                                                                 b["truncated"]), where
            counts["steps"] += len(py) - 1
            counts["terminated"] += int(py[-1].get("terminated", False))
            counts["truncated"] += int(py[-1].get("truncated", False))
    assert counts["steps"] > 500
    assert counts["terminated"] > 0 and counts["truncated"] > 0, counts
    assert {g["rules"]["controls"] for g in cases["games"]} == set(CONTROLS)
    assert {g["rules"]["slip"] > 0 for g in cases["games"]} == {True, False}


def test_js_refuses_the_layouts_python_refuses_with_the_same_message(
        js_run: tuple[dict, dict]) -> None:
    cases, out = js_run
    for text, message in zip(cases["bad"], out["errors"]):
        with pytest.raises(ValueError) as caught:
            parse_layout(text)
        assert message == str(caught.value), text


def test_edited_layouts_are_new_levels() -> None:
    cases = make_cases()
    generated = [g["layout"] for i, g in enumerate(cases) if i % 2 == 0]
    edits = [g["layout"] for i, g in enumerate(cases) if i % 2]
    assert all(isinstance(parse_layout(text).walls, np.ndarray) for text in edits)
    assert len(set(edits) - set(generated)) == len(edits)
