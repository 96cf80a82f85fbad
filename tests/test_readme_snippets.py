"""The Python, JavaScript and C++ snippets of exports/README.md, "Loading it", run as written.

Every runnable block there carries a tag, ``<!-- snippet: NAME -->`` on the line before its
fence. The blocks are extracted, written to a folder whose ``exports/`` holds fresh tiny
exports under the names the snippets use, and run unmodified: Python with this interpreter,
JavaScript (ES modules) with Node and onnxruntime-node, C++ compiled with g++ against the
ONNX Runtime headers (``scripts/check_cpp_snippets.sh --headers``) and the
``libonnxruntime.so.1`` of onnxruntime-node. Each prints JSON lines of what it computed; the
test recomputes it with ONNX Runtime from Python on the same inputs: discrete actions equal,
continuous ones, adapted weights, recurrent states and context sums within 1e-5.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pytest
from click.testing import CliRunner
from gameadapt.cli import cli
from jsenv import NODE_MODULES, ROOT, link_node_modules, require_js

README = ROOT / "exports" / "README.md"
SECTION = "## Loading it"
TAG = re.compile(r"^<!-- snippet: ([a-z0-9-]+) -->$")
RUNNABLE = {"python": ".py", "js": ".mjs", "cpp": ".cpp"}  # fence language -> file suffix
ORT_LIB = NODE_MODULES / "onnxruntime-node" / "bin" / "napi-v6" / "linux" / "x64"
TOLERANCE = 1e-5
RUNS = {  # run name -> train arguments
    "grid": ("gridnav", "--algo", "maml"), "point": ("pointnav", "--algo", "maml"),
    "grid-rl2": ("gridnav", "--algo", "rl2"), "grid-ctx": ("gridnav", "--algo", "context"),
}
EXPORTS = {  # the folder names the snippets use -> (run, export arguments)
    "grid-12000": ("grid", ("--with-adapter", "--action", "greedy")),
    "grid-sampled": ("grid", ("--action", "sampled")),
    "point-12000": ("point", ("--with-adapter", "--action", "greedy")),
    "gridnav-grid-rl2": ("rl2", ("--action", "sampled")),
    "gridnav-grid-ctx": ("ctx", ("--latent", "mean")),
}
MAX_DIFF: dict[str, float] = {}  # tag -> the largest difference measured (printed with -s)


# -- the blocks ---------------------------------------------------------------------------
def loading_it() -> list[str]:
    """The lines of the README's "Loading it" section."""
    text = README.read_text(encoding="utf-8")
    start = text.index(f"\n{SECTION}\n")
    end = text.find("\n## ", start + len(SECTION) + 2)
    return text[start:end if end >= 0 else len(text)].splitlines()


def tagged_blocks(lines: list[str] | None = None) -> dict[str, tuple[str, str]]:
    """``{tag: (language, code)}`` of ``lines`` (default: the section); fails on a tag
    without a block, a runnable block without a tag, or a tag used twice."""
    lines = loading_it() if lines is None else lines
    blocks: dict[str, tuple[str, str]] = {}
    problems: list[str] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        tag = TAG.match(line.strip())
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if tag and not following.startswith("```"):
            problems.append(f"tag {tag.group(1)!r} has no fenced block on the next line")
        if line.startswith("```") and line[3:].strip():
            language = line[3:].strip()
            end = lines.index("```", index + 1)
            previous = TAG.match(lines[index - 1].strip())
            if language in RUNNABLE and previous is None:
                problems.append(f"a {language} block at line {index} of {SECTION!r} has no tag")
            elif previous is not None:
                name = previous.group(1)
                if name in blocks:
                    problems.append(f"tag {name!r} is used twice")
                blocks[name] = (language, "\n".join(lines[index + 1:end]) + "\n")
            index = end
        index += 1
    assert not problems, problems
    return blocks


def test_every_runnable_block_is_tagged_and_checked() -> None:
    blocks = tagged_blocks()
    assert set(blocks) == set(CHECKS), "every tag needs a check in CHECKS, and every check a tag"
    for name, (language, _) in blocks.items():
        assert name.startswith({"python": "python-", "js": "js-", "cpp": "cpp-"}[language]), name


@pytest.mark.parametrize("lines, problem", [
    (["```python", "print(1)", "```"], "has no tag"),
    (["<!-- snippet: js-x -->", "", "```js", "1", "```"], "has no fenced block"),
    (["<!-- snippet: cpp-x -->", "```cpp", "```", "<!-- snippet: cpp-x -->", "```cpp", "```"],
     "used twice"),
])
def test_an_untagged_block_or_a_stray_tag_fails(lines: list[str], problem: str) -> None:
    with pytest.raises(AssertionError, match=problem):
        tagged_blocks(lines)


# -- fresh exports ------------------------------------------------------------------------
def invoke(*args: object) -> None:
    result = CliRunner().invoke(cli, [str(a) for a in args])
    assert result.exit_code == 0, result.output


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding ``exports/<name>`` for every name the snippets use."""
    root = tmp_path_factory.mktemp("snippets")
    for run, (game, *algo) in RUNS.items():
        invoke("train", game, *algo, "--iterations", 1, "--meta-batch", 2, "--envs-per-task", 2,
               "--device", "cpu", "--run-dir", root / "runs" / run)
    for name, (run, arguments) in EXPORTS.items():
        source = root / "runs" / ("grid-" + run if run in ("rl2", "ctx") else run)
        invoke("export", source, "-o", root / "exports" / name, *arguments)
    return root


# -- running them -------------------------------------------------------------------------
def missing(what: str) -> None:
    """Skip here, fail under CI (as tests/jsenv.py does)."""
    if os.environ.get("CI") == "true":
        pytest.fail(what)
    pytest.skip(what)


def ort_headers() -> Path:
    """The ONNX Runtime C/C++ headers: $GAMEADAPT_ORT_HEADERS, or fetched by the script."""
    if os.environ.get("GAMEADAPT_ORT_HEADERS"):
        return Path(os.environ["GAMEADAPT_ORT_HEADERS"])
    done = subprocess.run(["bash", str(ROOT / "scripts" / "check_cpp_snippets.sh"), "--headers"],
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        missing(f"the ONNX Runtime headers could not be fetched: {done.stderr.strip()[-300:]}")
    return Path(done.stdout.strip())


def command_for(language: str, source: Path) -> list[str]:
    """The command that runs ``source`` (C++: compiled first)."""
    if language == "python":
        return [sys.executable, str(source)]
    if language == "js":
        node = require_js("onnxruntime-node")
        link_node_modules(source.parent)
        return [node, str(source)]
    compiler = shutil.which("g++")
    if compiler is None or not (ORT_LIB / "libonnxruntime.so.1").is_file():
        missing("g++ or onnxruntime-node's libonnxruntime.so.1 is missing")
    binary = source.with_suffix("")
    build = subprocess.run(
        [str(compiler), "-std=c++17", "-O1", "-Wall", "-Werror", f"-I{ort_headers()}",
         str(source), f"-L{ORT_LIB}", "-l:libonnxruntime.so.1", f"-Wl,-rpath,{ORT_LIB}",
         "-o", str(binary)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, build.stderr
    return [str(binary)]


def run_snippet(tag: str, workdir: Path) -> list[dict[str, Any]]:
    """Run the block tagged ``tag`` as written, in ``workdir``; its JSON lines."""
    language, code = tagged_blocks()[tag]
    source = workdir / f"{tag}{RUNNABLE[language]}"
    source.write_text(code, encoding="utf-8")
    command = command_for(language, source)
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, check=False,
                          timeout=300)
    assert done.returncode == 0, f"{tag} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    lines = [json.loads(line) for line in done.stdout.splitlines() if line.strip()]
    assert lines, f"{tag} printed nothing"
    return lines


# -- the reference: ONNX Runtime from Python ----------------------------------------------
def session(folder: Path, name: str) -> ort.InferenceSession:
    return ort.InferenceSession(str(folder / name), providers=["CPUExecutionProvider"])


def run(sess: ort.InferenceSession, feeds: dict[str, Any]) -> dict[str, np.ndarray]:
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, feeds)))


def f32(values: Any, *shape: int) -> np.ndarray:
    array = np.asarray(values, dtype=np.float32)
    return array.reshape(shape) if shape else array


def manifest(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "policy.json").read_text())


def assert_close(tag: str, got: Any, want: Any) -> None:
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, (tag, got.shape, want.shape)
    diff = float(np.max(np.abs(got - want))) if got.size else 0.0
    MAX_DIFF[tag] = max(MAX_DIFF.get(tag, 0.0), diff)
    assert diff <= TOLERANCE, (tag, diff)


def assert_action(tag: str, folder: Path, got: Any, want: np.ndarray) -> None:
    """Discrete: the same index; continuous: within the tolerance."""
    if manifest(folder)["action_space"]["type"] == "discrete":
        assert np.asarray(got).reshape(-1).tolist() == want.reshape(-1).tolist(), tag
    else:
        assert_close(tag, np.asarray(got).reshape(-1), want.reshape(-1))


# -- the checks, one per tag --------------------------------------------------------------
def check_python_policy(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    (line,) = lines
    grid, sampled, point = (root / "exports" / name
                            for name in ("grid-12000", "grid-sampled", "point-12000"))
    obs = f32(line["observation"], 1, -1)
    want = run(session(grid, "policy.onnx"), {"observation": obs})
    assert line["greedy"] == int(want["action"][0])
    assert_close(tag, [line["logits"]], want["logits"])
    drawn = run(session(sampled, "policy.onnx"),
                {"observation": obs, "noise": f32(line["noise"], 1, -1)})
    assert line["sampled"] == int(drawn["action"][0])
    velocity = run(session(point, "policy.onnx"), {"observation": f32(line["position"], 1, -1)})
    assert_close(tag, [line["velocity"]], velocity["action"])


def check_policy(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    assert [line["dir"] for line in lines] == ["exports/grid-12000", "exports/point-12000"]
    for line in lines:
        folder = root / line["dir"]
        want = run(session(folder, "policy.onnx"),
                   {"observation": f32(line["observation"], 1, -1)})["action"]
        assert_action(tag, folder, line["action"], want)


def check_sampled(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    (line,) = lines
    noise = f32(line["noise"], 1, -1)
    assert noise.shape == (1, 4) and ((noise >= 0) & (noise < 1)).all()
    want = run(session(root / "exports" / "grid-sampled", "policy.onnx"),
               {"observation": f32(line["observation"], 1, -1), "noise": noise})
    assert line["action"] == int(want["action"][0])


def weights_bin(folder: Path) -> dict[str, np.ndarray]:
    raw = (folder / "weights.bin").read_bytes()
    return {w["input_name"]: np.frombuffer(raw, "<f4", w["count"], w["offset_bytes"])
            .reshape(w["shape"]).astype(np.float32) for w in manifest(folder)["weights"]}


def check_adapter(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    """Both games: the printed adapted weights are adapter.onnx's on the printed experience,
    and the printed action policy_weights.onnx's under them."""
    folders = [root / (line.get("folder") or line["dir"]) for line in lines]
    kinds = [manifest(folder)["action_space"]["type"] for folder in folders]
    assert kinds == ["discrete", "box"], kinds
    for line, folder in zip(lines, folders):
        spec = manifest(folder)
        discrete = spec["action_space"]["type"] == "discrete"
        obs_dim = int(np.prod(spec["observation_space"]["shape"]))
        n = len(line["advantages"])
        actions = (np.asarray(line["actions"], np.int64).reshape(n) if discrete else
                   f32(line["actions"], n, int(np.prod(spec["action_space"]["shape"]))))
        feeds = {**weights_bin(folder), "observations": f32(line["observations"], n, obs_dim),
                 "actions": actions, "advantages": f32(line["advantages"]),
                 "inner_lr": np.asarray(spec["adapter"]["inner_lr"], np.float32)}
        adapted = run(session(folder, "adapter.onnx"), feeds)
        assert set(line["weights"]) == {w["input_name"] for w in spec["weights"]}
        for w in spec["weights"]:
            got = f32(line["weights"][w["input_name"]]).reshape(w["shape"])
            assert_close(tag, got, adapted[f"new_{w['input_name']}"])
        observation = line.get("observation", line["observations"][:obs_dim])
        acting = {"observation": f32(observation, 1, obs_dim),
                  **{name: f32(values).reshape(adapted[f"new_{name}"].shape)
                     for name, values in line["weights"].items()}}
        want = run(session(folder, "policy_weights.onnx"), acting)["action"]
        assert_action(tag, folder, line["action"], want)


def python_noise(folder: Path) -> Callable[[], np.ndarray]:
    """The noise the loader draws for ``OnnxPolicy.load(folder, seed=0)`` (none: greedy)."""
    rng, spec = np.random.default_rng(0), manifest(folder)["noise"]
    if spec is None:
        return lambda: np.zeros((1, 0), np.float32)
    return lambda: rng.random((1, int(spec["shape"][1])), dtype=np.float32)


def steps_of(tag: str, lines: list[dict[str, Any]], folder: Path) -> list[dict[str, Any]]:
    """Every step in order, with ``start`` (first of its episode) and ``noise``."""
    if "episodes" in lines[0]:
        steps = [dict(step, start=t == 0) for episode in lines[0]["episodes"]
                 for t, step in enumerate(episode)]
    else:  # C++: one line per step
        steps = [dict(line, start=i == 0 or line["episode"] != lines[i - 1]["episode"])
                 for i, line in enumerate(lines)]
    if tag.startswith("python-"):
        draw = python_noise(folder)
        for step in steps:
            step["noise"] = draw()
    assert sum(step["start"] for step in steps) == 2 and len(steps) >= 6
    return steps


def with_noise(feeds: dict[str, Any], step: dict[str, Any], folder: Path) -> dict[str, Any]:
    if manifest(folder)["noise"] is not None:
        feeds["noise"] = f32(step["noise"], 1, -1)
    return feeds


def check_recurrent(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    """Replayed with the state carried: the same actions, the same states."""
    folder = root / "exports" / "gridnav-grid-rl2"
    policy, size = session(folder, "policy.onnx"), manifest(folder)["recurrent"]["state_size"]
    state, action, reward = np.zeros((1, size), np.float32), -1, 0.0
    for step in steps_of(tag, lines, folder):
        feeds = {"observation": f32(step["observation"], 1, -1),
                 "prev_action": np.array([action], np.int64), "prev_reward": f32([reward]),
                 "episode_start": f32([1.0 if step["start"] else 0.0]), "state": state}
        out = run(policy, with_noise(feeds, step, folder))
        assert step["action"] == int(out["action"][0]), tag
        state, action, reward = out["state_out"], step["action"], step["reward"]
        if "state" in step:
            assert_close(tag, [step["state"]], state)
    assert_close(tag, np.asarray(lines[-1]["state"]).reshape(1, -1), state)  # the last


def check_context(tag: str, lines: list[dict[str, Any]], root: Path) -> None:
    """Replayed with the sums carried (latent mean, z from the posterior before every step):
    the same actions, the same sums."""
    folder = root / "exports" / "gridnav-grid-ctx"
    spec = manifest(folder)["context"]
    assert (spec["latent_mode"], spec["z_update"]) == ("mean", "step")  # what the C++ fixes
    policy, encoder = session(folder, "policy.onnx"), session(folder, "encoder.onnx")
    size = spec["latent_size"]
    sums = {"precision_sum": np.ones((1, size), np.float32),
            "weighted_sum": np.zeros((1, size), np.float32)}
    mean = np.zeros((1, size), np.float32)
    for step in steps_of(tag, lines, folder):
        obs = f32(step["observation"], 1, -1)
        out = run(policy, with_noise({"observation": obs, "z": mean}, step, folder))
        assert step["action"] == int(out["action"][0]), tag
        new = run(encoder, {"observation": obs, "action": np.array([step["action"]], np.int64),
                            "reward": f32([step["reward"]]),
                            "next_observation": f32(step["next_observation"], 1, -1), **sums})
        sums = {name: new[f"{name}_out"] for name in sums}
        mean = new["posterior_mean"]
        for name in sums:
            if name in step:
                assert_close(tag, [step[name]], sums[name])
    for name in sums:  # the last sums (C++: its last line's)
        assert_close(tag, np.asarray(lines[-1][name]).reshape(1, -1), sums[name])


CHECKS: dict[str, Callable[[str, list[dict[str, Any]], Path], None]] = {
    "python-policy": check_python_policy, "python-adapter": check_adapter,
    "python-recurrent": check_recurrent, "python-context": check_context,
    "js-policy": check_policy, "js-sampled": check_sampled, "js-adapter": check_adapter,
    "js-recurrent": check_recurrent, "js-context": check_context,
    "cpp-policy": check_policy, "cpp-recurrent": check_recurrent, "cpp-context": check_context,
}


@pytest.mark.slow  # trains and exports four tiny runs, runs Node and g++
@pytest.mark.parametrize("tag", sorted(CHECKS))
def test_the_snippet_runs_as_written_and_matches_onnx_runtime(tag: str, workdir: Path) -> None:
    CHECKS[tag](tag, run_snippet(tag, workdir), workdir)
    print(f"{tag}: max abs diff {MAX_DIFF.get(tag, 0.0):.3g}")  # shown with -s
