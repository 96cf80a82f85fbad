"""The browser playground end to end: tiny gridnav runs of the three families (maml with an
adapter and without, rl2, context) exported, written as playground folders, served on 127.0.0.1 and
driven in headless Chromium (Debian's, through playwright-core): episodes played, the level
edited by real clicks (a wall on the canvas, the controls select, the slip slider), more
episodes played. Then, in Python, on what the page recorded:

- the JavaScript game in the browser played exactly the Python ``GridNavEnv`` (same layout,
  rules, seed and actions: every observation bit for bit, every reward as float32);
- every action is what Python onnxruntime gives on the same inputs (observation, noise, the
  weights in effect / the recurrent state / ``z``), exactly;
- the adapter family's weights after every episode are Python ORT's ``adapter.onnx`` on that
  episode (reward-to-go advantages) within 1e-5; the recurrent state, the context sums and
  ``z`` are carried by the rules of exports/README.md;
- the plotted returns are the sums of the recorded rewards;
- a screenshot is saved (``GAMEADAPT_PLAYGROUND_SCREENSHOT=docs/img/playground.png`` copies
  the adapter family's there: the README's picture).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.games.gridnav import GridNavEnv
from gameadapt.games.gridnav.levels import parse_layout
from gameadapt.ship.onnxpolicy import OnnxPolicy, reward_to_go_advantages
from gameadapt.ship.playground import make_server

from jsenv import NODE_MODULES, ROOT, chromium, require_js

pytestmark = pytest.mark.slow  # trains, exports and drives a browser

TINY = ["--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu"]
FAMILIES = {"adapter": ("maml", ["--with-adapter"]), "policy": ("maml", []),
            "recurrent": ("rl2", []), "context": ("context", [])}
DRIVER = ROOT / "tests" / "playground_driver.mjs"
ORT_WEB = NODE_MODULES / "onnxruntime-web" / "dist"
SCREENSHOT_ENV = "GAMEADAPT_PLAYGROUND_SCREENSHOT"
BEFORE, AFTER = 3, 3  # episodes before and after the edits


def invoke(*args: Any) -> str:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output
    return result.output


@pytest.fixture(scope="module")
def node() -> str:
    return require_js("playwright-core", "onnxruntime-web", browser=True)


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def played(request: pytest.FixtureRequest, node: str,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """One family's export, playground folder and what the browser recorded."""
    family = request.param
    algo, export_flags = FAMILIES[family]
    here = tmp_path_factory.mktemp(f"playground_{family}")
    invoke("train", "gridnav", "--algo", algo, *TINY, "--run-dir", here / "run")
    invoke("export", here / "run", "-o", here / "export", "--target", "web", *export_flags)
    manifest = json.loads((here / "export" / "policy.json").read_text(encoding="utf-8"))
    assert manifest["target"]["name"] == "web"  # the target the browser plays
    output = invoke("playground", here / "export", "-o", here / "page", "--ort-web", ORT_WEB)
    assert f"({family} family, 6 levels)" in output and "jsDelivr" not in output
    config = json.loads((here / "page" / "config.json").read_text(encoding="utf-8"))
    server = make_server(here / "page")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        plan = {"url": f"http://127.0.0.1:{server.server_address[1]}/", "chromium": chromium(),
                "user_data_dir": str(here / "chromium-profile"), "out": str(here / "log.json"),
                "screenshot": str(here / "playground.png"), "before": BEFORE, "after": AFTER,
                "wall": wall_cell(config["levels"][0]["layout"]), "controls": "mirrored",
                "slip": "0.2"}
        (here / "plan.json").write_text(json.dumps(plan), encoding="utf-8")
        run = subprocess.run([node, str(DRIVER), str(here / "plan.json")], capture_output=True,
                             text=True, check=False, timeout=500, cwd=DRIVER.parent)
    finally:
        server.shutdown()
        server.server_close()
    record = json.loads(Path(plan["out"]).read_text(encoding="utf-8"))
    assert run.returncode == 0 and not record.get("error"), (record, run.stderr[-2000:])
    yield {"family": family, "export": here / "export", "record": record, "plan": plan,
           "config": config}


def wall_cell(layout: str) -> list[int]:
    """The first floor cell whose wall keeps the goal reachable."""
    rows = layout.split("/")
    for y, row in enumerate(rows):
        for x, cell in enumerate(row):
            if cell == ".":
                edited = rows[:y] + [row[:x] + "#" + row[x + 1:]] + rows[y + 1:]
                try:
                    parse_layout("/".join(edited))
                except ValueError:
                    continue
                return [x, y]
    raise AssertionError(f"no cell of {layout} can become a wall")


def episodes(record: dict[str, Any]) -> list[dict[str, Any]]:
    return record["log"]["episodes"]


def test_the_page_ran_locally_and_made_the_edits(played: dict[str, Any]) -> None:
    record, plan = played["record"], played["plan"]
    assert record["family"] == played["family"]
    assert not [m for m in record["messages"] if m.startswith(("remote:", "pageerror"))]
    levels = record["log"]["levels"]
    first = played["config"]["levels"][0]["layout"]
    x, y = plan["wall"]
    rows = first.split("/")
    walled = "/".join(rows[:y] + [rows[y][:x] + "#" + rows[y][x + 1:]] + rows[y + 1:])
    assert [level["layout"] for level in levels] == [first, walled, walled, walled]
    assert [level["rules"]["controls"] for level in levels] == ["normal", "normal",
                                                                "mirrored", "mirrored"]
    assert [level["rules"]["slip"] for level in levels] == [0, 0, 0, 0.2]
    finished = [e for e in episodes(record) if not e["cut"]]
    assert len(finished) == record["episodesDone"] >= BEFORE + AFTER
    assert [e["segment"] for e in episodes(record) if e["cut"]] == [0]
    assert {e["segment"] for e in finished} == {0, 3}
    text = record["family_text"] + " " + record["carries"]
    expected = {"adapter": "adapting with adapter.onnx after every episode",
                "policy": "does not adapt",
                "recurrent": "GRU state", "context": "encoder.onnx after every step"}
    assert expected[played["family"]] in text
    assert Path(plan["screenshot"]).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    target = os.environ.get(SCREENSHOT_ENV)
    if target and played["family"] == "adapter":
        shutil.copyfile(plan["screenshot"], target)


def test_the_browser_game_is_the_python_game(played: dict[str, Any]) -> None:
    steps = 0
    for episode in episodes(played["record"]):
        env = GridNavEnv({"level": {"layout": episode["layout"]}, "rules": episode["rules"]})
        observation, _ = env.reset(seed=episode["seed"])
        for step in episode["steps"]:
            assert np.array_equal(np.asarray(step["observation"], np.float32), observation)
            observation, reward, terminated, truncated, _ = env.step(step["action"])
            assert np.array_equal(np.asarray(step["next_observation"], np.float32), observation)
            assert np.float32(step["reward"]) == np.float32(reward)
            assert (step["terminated"], step["truncated"]) == (terminated, truncated)
            steps += 1
        if not episode["cut"]:
            assert terminated or truncated
    assert steps > 100


def test_the_plotted_returns_are_the_recorded_rewards(played: dict[str, Any]) -> None:
    record = played["record"]
    finished = [e for e in episodes(record) if not e["cut"]]
    sums = [float(np.sum(np.asarray([s["reward"] for s in e["steps"]], np.float64)))
            for e in finished]
    assert [p["value"] for p in record["plotted"]] == pytest.approx(sums, abs=1e-9)
    assert [p["segment"] for p in record["plotted"]] == [e["segment"] for e in finished]


class Recorded:
    """An rng whose ``random`` gives the uniform number the page drew (for
    :meth:`OnnxPolicy.sample`, Python's own sampling rule)."""

    def __init__(self, value: float) -> None:
        self.value = value

    def random(self, shape: tuple[int, ...]) -> np.ndarray:
        return np.full(shape, self.value)


def check_adapter_family(played: dict[str, Any]) -> None:
    """Actions and adapted weights against Python ORT (policy_weights.onnx, adapter.onnx)."""
    policy = OnnxPolicy.load(played["export"])
    base = policy.load_weights()
    gamma = float(policy.manifest["adapter"]["gamma"])
    weights, segment, worst, checked = base, -1, {"logits": 0.0, "weights": 0.0}, 0
    for episode in episodes(played["record"]):
        if episode["segment"] != segment:  # a new level: weights.bin's weights again
            weights, segment = base, episode["segment"]
        for step in episode["steps"]:
            out = policy.outputs_with(weights, step["observation"])
            worst["logits"] = max(worst["logits"], float(np.max(np.abs(
                out["logits"] - np.asarray(step["logits"], np.float32)))))
            _, index = policy.sample(np.asarray(step["observation"], np.float32),
                                     Recorded(step["uniform"]), weights)
            assert int(index) == step["action"]
            checked += 1
        if episode["cut"]:
            continue
        adapter = episode["adapter"]
        for name, values in adapter["weights_before"].items():
            assert np.array_equal(np.asarray(values, np.float32).reshape(-1),
                                  weights[name].reshape(-1))
        rewards = [s["reward"] for s in episode["steps"]]
        advantages = reward_to_go_advantages([rewards], gamma)
        assert np.allclose(adapter["advantages"], advantages, rtol=0, atol=1e-6)
        weights = policy.adapt(np.asarray([s["observation"] for s in episode["steps"]]),
                               np.asarray([s["action"] for s in episode["steps"]]), advantages,
                               weights=weights)
        for name, values in adapter["weights_after"].items():
            diff = np.abs(np.asarray(values, np.float32).reshape(weights[name].shape)
                          - weights[name])
            worst["weights"] = max(worst["weights"], float(diff.max()))
        weights = {name: np.asarray(values, np.float32).reshape(weights[name].shape)
                   for name, values in adapter["weights_after"].items()}  # carry the browser's
    print(f"adapter family: {checked} actions equal; max |logits diff| {worst['logits']:.2g}, "
          f"max |adapted weights diff| {worst['weights']:.2g}")
    assert worst["logits"] <= 1e-5 and worst["weights"] <= 1e-5 and checked > 100


def check_recurrent_family(played: dict[str, Any]) -> None:
    """Actions and state against Python ORT; the state, previous action and reward carried."""
    session = ort.InferenceSession(str(played["export"] / "policy.onnx"))
    names = [o.name for o in session.get_outputs()]
    previous: dict[str, Any] | None = None
    segment, worst, checked = -1, 0.0, 0
    for episode in episodes(played["record"]):
        for t, step in enumerate(episode["steps"]):
            new_level = episode["segment"] != segment
            segment = episode["segment"]
            state = np.asarray(step["state"], np.float32).reshape(1, -1)
            assert step["episode_start"] == (1.0 if t == 0 else 0.0)
            if new_level:
                assert not state.any() and step["prev_action"] == -1 and step["prev_reward"] == 0
            else:
                assert previous is not None
                assert step["prev_action"] == previous["action"]
                assert step["prev_reward"] == float(np.float32(previous["reward"]))
                assert np.array_equal(state.reshape(-1), previous["state_out"]), "state carried"
            feeds = {"observation": np.asarray([step["observation"]], np.float32),
                     "prev_action": np.asarray([step["prev_action"]], np.int64),
                     "prev_reward": np.asarray([step["prev_reward"]], np.float32),
                     "episode_start": np.asarray([step["episode_start"]], np.float32),
                     "state": state}
            if "noise" in step:
                feeds["noise"] = np.asarray([step["noise"]], np.float32)
            out = dict(zip(names, session.run(names, feeds)))
            assert int(out["action"][0]) == step["action"]
            for name in ("logits", "state_out"):
                worst = max(worst, float(np.max(np.abs(out[name][0] - step[name]))))
            previous = step
            checked += 1
    print(f"recurrent family: {checked} actions equal; max |logits, state_out diff| {worst:.2g}")
    assert worst <= 1e-5 and checked > 100


def check_context_family(played: dict[str, Any]) -> None:
    """Actions and the posterior against Python ORT; the sums carried, ``z`` their mean."""
    folder = played["export"]
    context = json.loads((folder / "policy.json").read_text(encoding="utf-8"))["context"]
    assert (context["z_update"], context["latent_mode"]) == ("step", "mean")
    policy = ort.InferenceSession(str(folder / "policy.onnx"))
    encoder = ort.InferenceSession(str(folder / "encoder.onnx"))
    encoder_names = [o.name for o in encoder.get_outputs()]
    segment, worst, checked = -1, 0.0, 0
    sums: dict[str, np.ndarray] = {}
    for episode in episodes(played["record"]):
        if episode["segment"] != segment:  # the prior at a new level
            segment = episode["segment"]
            sums = {"precision_sum": np.ones((1, 5), np.float32),
                    "weighted_sum": np.zeros((1, 5), np.float32),
                    "posterior_mean": np.zeros((1, 5), np.float32)}
        for step in episode["steps"]:
            encoded = step["encoder"]
            for name in ("precision_sum", "weighted_sum"):
                assert np.array_equal(np.asarray([encoded[name]], np.float32), sums[name])
            assert np.array_equal(np.asarray([step["z"]], np.float32), sums["posterior_mean"])
            feeds = {"observation": np.asarray([step["observation"]], np.float32),
                     "z": np.asarray([step["z"]], np.float32),
                     "noise": np.asarray([step["noise"]], np.float32)}
            action = policy.run(["action"], feeds)[0]
            assert int(action[0]) == step["action"]
            out = dict(zip(encoder_names, encoder.run(encoder_names, {
                "observation": feeds["observation"], "action": np.asarray([step["action"]]),
                "reward": np.asarray([step["reward"]], np.float32),
                "next_observation": np.asarray([step["next_observation"]], np.float32),
                "precision_sum": sums["precision_sum"], "weighted_sum": sums["weighted_sum"]})))
            for name in encoder_names:
                worst = max(worst, float(np.max(np.abs(out[name][0] - encoded[name]))))
            sums = {"precision_sum": np.asarray([encoded["precision_sum_out"]], np.float32),
                    "weighted_sum": np.asarray([encoded["weighted_sum_out"]], np.float32),
                    "posterior_mean": np.asarray([encoded["posterior_mean"]], np.float32)}
            checked += 1
    print(f"context family: {checked} actions equal; max |encoder outputs diff| {worst:.2g}")
    assert worst <= 1e-5 * max(1.0, float(np.max(sums["precision_sum"]))) and checked > 100


def check_policy_family(played: dict[str, Any]) -> None:
    """policy.onnx's sampled action against Python ORT on the same observation and noise."""
    session = ort.InferenceSession(str(played["export"] / "policy.onnx"))
    checked = 0
    for episode in episodes(played["record"]):
        for step in episode["steps"]:
            action, logits = session.run(["action", "logits"], {
                "observation": np.asarray([step["observation"]], np.float32),
                "noise": np.asarray([step["noise"]], np.float32)})
            assert int(action[0]) == step["action"]
            assert np.allclose(logits[0], step["logits"], rtol=0, atol=1e-5)
            checked += 1
    print(f"policy family: {checked} actions equal")
    assert checked > 100


CHECKS = {"adapter": check_adapter_family, "policy": check_policy_family,
          "recurrent": check_recurrent_family, "context": check_context_family}


def test_every_action_and_what_the_family_carries_match_python_ort(
        played: dict[str, Any]) -> None:
    CHECKS[played["family"]](played)
