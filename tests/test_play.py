"""``gameadapt play`` and the reference loader ``gameadapt.ship.onnxpolicy`` on real exports.

Tiny runs of gridnav (discrete) and pointnav (continuous) are exported once per module with
``gameadapt export --with-adapter``; tests that damage an export work on a copy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from gameadapt.cli import cli
from gameadapt.host.registry import get_registry
from gameadapt.learn.policy import distribution_params, greedy_action
from gameadapt.ship.onnxpolicy import OnnxPolicy, PolicyLoadError, reward_to_go_advantages
from gameadapt.ship.play import play
from gameadapt.ship.sources import load_policy_source

pytestmark = pytest.mark.slow  # the module exports two trained runs first

GAMES = ("gridnav", "pointnav")
ONNXPOLICY_FILE = Path(__file__).resolve().parents[1] / "engine" / "ship" / "onnxpolicy.py"


def invoke(*args: object):
    return CliRunner().invoke(cli, [str(a) for a in args])


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.output
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """``{game: (run folder, export folder)}``, exported with the real ``gameadapt export``."""
    root = tmp_path_factory.mktemp("play")
    made = {}
    for game in GAMES:
        run, out = root / f"run-{game}", root / f"export-{game}"
        result = invoke("train", game, "--iterations", "2", "--meta-batch", "2",
                        "--envs-per-task", "3", "--run-dir", run)
        assert result.exit_code == 0, result.output
        result = invoke("export", run, "-o", out, "--with-adapter", "--action", "greedy")
        assert result.exit_code == 0, result.output
        made[game] = (run, out)
    return made


def copy_export(exported: dict[str, tuple[Path, Path]], game: str, tmp_path: Path) -> Path:
    return Path(shutil.copytree(exported[game][1], tmp_path / "copy"))


def edit_manifest(folder: Path, **changes: object) -> None:
    path = folder / "policy.json"
    manifest = json.loads(path.read_text())
    manifest.update(changes)
    path.write_text(json.dumps(manifest))


# -- play against torch -----------------------------------------------------------------
def torch_episode(run: Path, game: str, seed: int) -> list[np.ndarray]:
    """The greedy env actions of one episode played with the torch policy."""
    source = load_policy_source(run)
    env = source.spec.make_env(source.variant)
    obs, _ = env.reset(seed=seed)
    actions, done = [], False
    while not done:
        action = greedy_action(source.policy, torch.as_tensor(obs, dtype=torch.float32)[None])[0]
        action = action.numpy() if not source.policy.discrete else int(action)
        actions.append(np.asarray(action))
        obs, _, terminated, truncated, _ = env.step(action)
        done = terminated or truncated
    return actions


@pytest.mark.parametrize("game", GAMES)
def test_onnx_play_takes_the_torch_policys_greedy_actions(game: str, exported) -> None:
    run, folder = exported[game]
    policy = OnnxPolicy.load(folder)
    spec = get_registry().game(game)
    lines: list[str] = []
    episodes = play(policy, spec, policy.variant, episodes=2, seed=3, echo=lines.append)
    for index, episode in enumerate(episodes):
        expected = torch_episode(run, game, seed=3 + index)
        assert len(episode.actions) == len(expected)
        for step, (got, want) in enumerate(zip(episode.actions, expected)):
            if spec.is_discrete:
                assert got == int(want), (index, step)
            else:
                np.testing.assert_allclose(got, want, atol=1e-5, err_msg=f"{index}, {step}")
    assert lines[-1].startswith("mean return over 2 episodes:")
    mean = np.mean([e.total for e in episodes])
    assert f"{mean:.3f}" in lines[-1]


def test_the_same_seed_replays_the_same_episodes(exported) -> None:
    first = invoke("play", exported["gridnav"][1], "--episodes", "2", "--seed", "5")
    second = invoke("play", exported["gridnav"][1], "--episodes", "2", "--seed", "5",
                    "--game", "gridnav")
    assert first.exit_code == 0, first.output
    assert first.stdout == second.stdout and "episode 2: return" in first.stdout


def test_play_uses_the_manifest_variant_by_default(exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "pointnav", tmp_path)
    edit_manifest(folder, variant={"level": {"goal_x": -0.25}, "rules": {"horizon": 12}})
    result = invoke("play", folder, "--episodes", "1")
    assert result.exit_code == 0, result.output
    assert "'goal_x': -0.25" in result.stdout and "(12 steps)" in result.stdout
    result = invoke("play", folder, "--episodes", "1", "-v", "horizon=11")  # overrides it
    assert "'goal_x': -0.25" in result.stdout and "(11 steps)" in result.stdout


def test_render_prints_text_frames(exported) -> None:
    result = invoke("play", exported["gridnav"][1], "--episodes", "1", "--render")
    assert result.exit_code == 0, result.output
    assert "step 1: action" in result.stdout and "A" in result.stdout  # the agent's cell


@pytest.mark.parametrize("game", GAMES)
def test_adapt_online_changes_the_weights_between_episodes(game: str, exported) -> None:
    result = invoke("play", exported[game][1], "--episodes", "3", "--adapt-online")
    assert result.exit_code == 0, result.output
    assert [f"episode {i}: return" in result.stdout for i in (1, 2, 3)] == [True] * 3
    policy = OnnxPolicy.load(exported[game][1])
    spec = get_registry().game(game)
    episode = play(policy, spec, policy.variant, episodes=1, sample=True, echo=lambda _: None)[0]
    weights = policy.load_weights()
    advantages = reward_to_go_advantages([episode.rewards], 0.99)
    new = policy.adapt(np.stack(episode.observations), np.asarray(episode.policy_actions),
                       advantages, weights=weights)
    assert any(not np.array_equal(new[k], weights[k]) for k in weights)


def test_play_never_imports_torch(exported) -> None:
    script = (
        "import atexit, sys\n"
        "atexit.register(lambda: print('TORCH', 'torch' in sys.modules))\n"
        "from gameadapt.cli import cli\n"
        f"sys.argv = ['gameadapt', 'play', {str(exported['pointnav'][1])!r}, '--episodes', '2',"
        " '--adapt-online']\n"
        "cli()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert "episode 2: return" in done.stdout
    assert done.stdout.strip().splitlines()[-1] == "TORCH False"


def test_the_reference_loader_needs_only_numpy_and_onnxruntime(exported) -> None:
    script = (
        "import importlib.util, sys\n"
        f"spec = importlib.util.spec_from_file_location('onnxpolicy', {str(ONNXPOLICY_FILE)!r})\n"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module)\n"
        f"policy = module.OnnxPolicy.load({str(exported['gridnav'][1])!r})\n"
        "print(policy.act([0.0] * 9), sorted(m for m in sys.modules if m.startswith(('torch', "
        "'gameadapt'))))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("[]")


# -- bad input: one line, non-zero exit ---------------------------------------------------
def test_a_policy_for_another_game_is_refused(exported) -> None:
    result = invoke("play", exported["gridnav"][1], "--game", "pointnav")
    assert_one_line_error(result, "'gridnav'", "'pointnav'")


def test_mismatching_spaces_are_refused(exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "gridnav", tmp_path)
    edit_manifest(folder, action_space={"type": "discrete", "n": 5, "start": 0})
    assert_one_line_error(invoke("play", folder), "action space", "Discrete(5)")


def test_a_variant_outside_its_domain_is_refused(exported) -> None:
    assert_one_line_error(invoke("play", exported["gridnav"][1], "-v", "slip=3"), "slip")


def test_a_missing_policy_onnx_is_refused(exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "gridnav", tmp_path)
    (folder / "policy.onnx").unlink()
    assert_one_line_error(invoke("play", folder), "policy.onnx", "missing")


def test_a_tampered_file_fails_its_sha256(exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "pointnav", tmp_path)
    data = bytearray((folder / "weights.bin").read_bytes())
    data[5] ^= 0xFF
    (folder / "weights.bin").write_bytes(bytes(data))
    assert_one_line_error(invoke("play", folder), "weights.bin", "sha256")


def test_a_corrupt_policy_onnx_is_refused(exported, tmp_path: Path) -> None:
    import hashlib

    folder = copy_export(exported, "gridnav", tmp_path)
    garbage = b"this is not an onnx model"
    (folder / "policy.onnx").write_bytes(garbage)
    manifest = json.loads((folder / "policy.json").read_text())
    manifest["files"]["policy.onnx"].update(sha256=hashlib.sha256(garbage).hexdigest(),
                                            bytes=len(garbage))
    (folder / "policy.json").write_text(json.dumps(manifest))
    assert_one_line_error(invoke("play", folder), "ONNX Runtime cannot load")


@pytest.mark.parametrize("content", ["{not json", json.dumps({"format": "other/9"})])
def test_a_bad_manifest_is_refused(content: str, exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "gridnav", tmp_path)
    (folder / "policy.json").write_text(content)
    assert_one_line_error(invoke("play", folder), "policy.json")


def test_adapt_online_needs_an_adapter(exported, tmp_path: Path) -> None:
    folder = copy_export(exported, "gridnav", tmp_path)
    manifest = json.loads((folder / "policy.json").read_text())
    for name in ("adapter.onnx", "policy_weights.onnx", "weights.bin"):
        del manifest["files"][name]
    edit_manifest(folder, files=manifest["files"], weights=None, adapter=None)
    assert_one_line_error(invoke("play", folder, "--adapt-online"), "--with-adapter")
    assert invoke("play", folder, "--episodes", "1").exit_code == 0


def test_not_a_policy_folder(tmp_path: Path) -> None:
    assert_one_line_error(invoke("play", tmp_path), "policy.json")


# -- the reference loader -------------------------------------------------------------------
@pytest.mark.parametrize("game", GAMES)
def test_loader_matches_torch_outputs_weights_and_inner_step(game: str, exported) -> None:
    run, folder = exported[game]
    source = load_policy_source(run)
    torch_policy = source.policy
    policy = OnnxPolicy.load(folder)
    rng = np.random.default_rng(0)
    obs = rng.normal(size=(6, torch_policy.obs_dim)).astype(np.float32)

    batch = policy.act(obs)
    assert batch.shape[0] == 6
    single = policy.act(obs[0])
    np.testing.assert_array_equal(single, batch[0])
    with torch.no_grad():
        want = greedy_action(torch_policy, torch.as_tensor(obs)).numpy()
    np.testing.assert_allclose(batch, want, atol=1e-5)

    weights = policy.load_weights()
    by_name = {spec["name"]: spec["input_name"] for spec in policy.manifest["weights"]}
    for name, value in torch_policy.named_parameters():
        np.testing.assert_array_equal(weights[by_name[name]], value.detach().numpy())
    np.testing.assert_allclose(policy.act_with(weights, obs), batch, atol=1e-6)

    # one inner step: theta - lr * grad(-mean(log pi(a|s) * A)), computed here with torch
    _, policy_actions = policy.sample(obs, rng)
    advantages = rng.normal(size=6).astype(np.float32)
    new = policy.adapt(obs, policy_actions, advantages, inner_lr=0.5, weights=weights)
    params = {name: value.detach().clone().requires_grad_(True)
              for name, value in torch_policy.named_parameters()}
    dist = distribution_params(torch_policy, params, torch.as_tensor(obs))
    log_prob = torch_policy.log_prob(dist, torch.as_tensor(policy_actions))
    loss = -(log_prob * torch.as_tensor(advantages)).mean()
    grads = torch.autograd.grad(loss, list(params.values()))
    for (name, value), grad in zip(params.items(), grads):
        np.testing.assert_allclose(new[by_name[name]], (value - 0.5 * grad).detach().numpy(),
                                   atol=1e-5, err_msg=name)


def test_loader_refuses_wrong_observation_sizes(exported) -> None:
    policy = OnnxPolicy.load(exported["gridnav"][1])
    with pytest.raises(PolicyLoadError, match="expects 9"):
        policy.act(np.zeros(4, dtype=np.float32))


def test_reward_to_go_advantages() -> None:
    advantages = reward_to_go_advantages([[1.0, 0.0, 1.0], [2.0]], gamma=0.5)
    returns = np.array([1.25, 0.5, 1.0, 2.0])
    expected = (returns - returns.mean()) / returns.std()
    np.testing.assert_allclose(advantages, expected, rtol=1e-6)
    assert advantages.dtype == np.float32
    np.testing.assert_array_equal(reward_to_go_advantages([[1.0, 1.0]], 0.0), [0.0, 0.0])


# -- a sampled export (--action sampled): the noise input ------------------------------------
@pytest.fixture(scope="module")
def sampled_export(exported, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("play-sampled") / "gridnav"
    result = invoke("export", exported["gridnav"][0], "-o", out, "--action", "sampled")
    assert result.exit_code == 0, result.output
    return out


def test_the_loader_fills_and_checks_the_noise(sampled_export, exported) -> None:
    policy = OnnxPolicy.load(sampled_export, seed=0)
    assert policy.takes_noise and policy.action_mode == "sampled" and not policy.recurrent
    obs = np.random.default_rng(0).normal(size=(300, 9)).astype(np.float32)
    noise = np.random.default_rng(1).random((300, 4)).astype(np.float32)
    out = policy.outputs(obs, noise=noise)
    u = np.clip(noise.astype(np.float64), 1e-7, 1 - 1e-7)
    expected = (out["logits"].astype(np.float64) - np.log(-np.log(u))).argmax(-1)
    assert (out["action"] == expected).mean() > 0.99
    assert np.array_equal(policy.act(obs[0], noise=noise[0]), out["action"][0])
    again = OnnxPolicy.load(sampled_export, seed=0)  # without noise: the seeded generator's
    np.testing.assert_array_equal(policy.act(obs), again.act(obs))
    rng = np.random.default_rng(7)
    env_action, index = policy.sample(obs[0], rng)  # from the logits, as for any export
    assert env_action == index and 0 <= index < 4
    with pytest.raises(PolicyLoadError, match=r"noise must be .*\[300, 4\], got \[300, 2\]"):
        policy.act(obs, noise=noise[:, :2])
    greedy = OnnxPolicy.load(exported["gridnav"][1])
    assert not greedy.takes_noise and greedy.action_mode == "greedy"
    with pytest.raises(PolicyLoadError, match="takes no noise"):
        greedy.act(obs, noise=noise)
    with pytest.raises(PolicyLoadError, match="not a recurrent export"):
        greedy.new_level()


def test_play_of_a_sampled_export_replays_with_the_seed(sampled_export) -> None:
    first = invoke("play", sampled_export, "--episodes", "2", "--seed", "3")
    second = invoke("play", sampled_export, "--episodes", "2", "--seed", "3", "--sample")
    assert first.exit_code == 0, first.output
    assert "(sampled actions)" in first.stdout and first.stdout == second.stdout
