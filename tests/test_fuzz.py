"""The fuzz suite: malformed input of every kind is one ``Error:`` line, a non-zero exit, no file changed.

Property-based (hypothesis), in-process (click's ``CliRunner``), against real tiny runs and a
real export made once per module. Each property draws malformed CLI arguments, config files,
variant files, manifests, run configs or corrupted checkpoints and asserts what the engine
promises for bad input (``docs/architecture.md``, "Guarantees"):

- exactly one ``Error:`` line, the last line of the output, no traceback, exit code != 0;
- no file changed anywhere the command could write (the run, the export, the working folder;
  lock files, which hold only the last holder's PID, excepted);
- for a corruption the engine cannot see (a flipped padding byte of a checkpoint's zip), the
  command may succeed, but then what it loaded is exactly what was saved.

The kill tests (faults injected at named export stages) and the concurrent-run tests belong to
the same suite and live in ``tests/test_replace.py`` and ``tests/test_locks.py``: they need
real processes.

Profiles: by default each property runs ``GAMEADAPT_FUZZ_EXAMPLES`` (25) examples, about a
minute for the module; ``GAMEADAPT_FUZZ_EXAMPLES=1000 bash scripts/test.sh tests/test_fuzz.py``
runs it longer (hypothesis keeps failing examples in ``.hypothesis/`` and replays them first).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import string
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from click.testing import CliRunner, Result
from gameadapt.cli import cli
from gameadapt.games.gridnav.levels import generate_level, layout_of, parse_layout
from gameadapt.limits import MAX_NESTING, SEED_MAX
from gameadapt.train.checkpoint import load_checkpoint
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

EXAMPLES = int(os.environ.get("GAMEADAPT_FUZZ_EXAMPLES", "25"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=bool(os.environ.get("CI")),
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])
TINY = ["--iterations", "1", "--meta-batch", "2", "--envs-per-task", "2", "--device", "cpu"]
LOCK_SUFFIX = ".lock"


# -- the property every malformed input must satisfy ----------------------------------------
def invoke(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, args, env=env)


def snapshot(*roots: Path) -> dict[str, str]:
    """Every file under ``roots`` (lock files excepted) with its SHA-256."""
    found = {}
    for root in roots:
        for path in sorted(Path(root).rglob("*")):
            if path.is_file() and not path.name.endswith(LOCK_SUFFIX):
                found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
            elif path.is_dir() and not any(path.iterdir()):
                found[str(path) + "/"] = "empty folder"
    return found


def assert_refused(result: Result, args: list[str]) -> None:
    """One ``Error:`` line, last, no traceback, a non-zero exit through ``sys.exit``."""
    shown = f"args {args!r}\n--- output:\n{result.output}"
    assert result.exit_code not in (0, None), shown
    assert isinstance(result.exception, SystemExit), \
        f"{shown}\n--- escaped: {result.exception!r}"
    lines = [line for line in result.output.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("Error:")]
    assert len(errors) == 1, shown
    assert lines[-1] == errors[0], shown
    assert "Traceback" not in result.output, shown


@contextlib.contextmanager
def workspace() -> Iterator[Path]:
    """A fresh, empty working folder for one example (the command runs in it)."""
    with tempfile.TemporaryDirectory() as folder, contextlib.chdir(folder):
        yield Path(folder)


def refused_without_changes(args: list[str], *watched: Path,
                            env: dict[str, str] | None = None) -> Result:
    """Run ``args`` in a fresh folder; assert the refusal and that no watched file changed."""
    with workspace() as here:
        before = snapshot(here, *watched)
        result = invoke(args, env)
        assert_refused(result, args)
        assert snapshot(here, *watched) == before, f"files changed by {args!r}"
    return result


# -- fixtures: real tiny runs and a real export, made once ----------------------------------
@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A maml run and a context run of gridnav (one iteration each) and the maml export."""
    root = tmp_path_factory.mktemp("fuzz")
    paths = {"maml": root / "maml", "context": root / "context", "export": root / "export"}
    for algorithm in ("maml", "context"):
        result = invoke(["train", "gridnav", "--algo", algorithm, *TINY,
                         "--run-dir", str(paths[algorithm])])
        assert result.exit_code == 0, result.output
    result = invoke(["export", str(paths["maml"]), "-o", str(paths["export"])])
    assert result.exit_code == 0, result.output
    return paths


# -- strategies -----------------------------------------------------------------------------
def _parses(convert: Callable[[str], Any], text: str) -> bool:
    try:
        convert(text)
    except (ValueError, OverflowError):
        return False
    return True


HELP = {"-h", "--help"}
junk_text = st.text(max_size=12).filter(lambda s: s not in HELP)
not_an_int = junk_text.filter(lambda s: not _parses(int, s))
not_a_float = junk_text.filter(lambda s: not _parses(float, s))
bad_seed = st.one_of(st.integers(max_value=-1), st.integers(min_value=SEED_MAX + 1),
                     not_an_int).map(str)
bad_count = st.one_of(st.integers(max_value=0), st.integers(min_value=10**12), not_an_int
                      ).map(str)
bad_float = st.one_of(st.sampled_from(["nan", "inf", "-inf", "1e308", "-1e308"]), not_a_float)
bad_path = st.sampled_from(["", "a-file/inside", "a-file", "a\0nul"])
bad_plot = st.sampled_from(["", "a-file/p.png", "plot.txt", "plot", "a\0nul.png"])
ALGORITHM_FLOATS = {"maml": ["inner_lr", "outer_lr", "init_log_std", "max_grad_norm", "gamma"],
                    "rl2": ["lr", "entropy_coef", "clip", "gamma"],
                    "context": ["lr", "kl_weight", "gae_lambda"]}


def train_args(data: st.DataObject) -> list[str]:
    """``train`` with one malformed value (seed, count, float option, path or unknown key)."""
    algorithm = data.draw(st.sampled_from(sorted(ALGORITHM_FLOATS)))
    base = ["train", "gridnav", "--algo", algorithm, *TINY, "--run-dir", "run"]
    kind = data.draw(st.sampled_from(["seed", "count", "option", "path", "unknown"]))
    if kind == "seed":
        return base + ["--seed", data.draw(bad_seed)]
    if kind == "count":
        flag = data.draw(st.sampled_from(["--iterations", "--meta-batch", "--envs-per-task",
                                          "--checkpoint-every"]))
        return base + [flag, data.draw(bad_count)]
    if kind == "option":
        name = data.draw(st.sampled_from(ALGORITHM_FLOATS[algorithm]))
        return base + ["-o", f"{name}={data.draw(bad_float)}"]
    if kind == "path":
        return [*base[:-2], "--run-dir", data.draw(bad_path)]
    key = data.draw(st.text(string.ascii_lowercase + "_", min_size=1, max_size=10))
    return base + ["-o", f"zz_{key}=1"]


def shipping_args(data: st.DataObject, made: dict[str, Path]) -> list[str]:
    """``play``/``adapt``/``export``/``evaluate``/``latents``/``games`` with one bad value."""
    run, export, context = str(made["maml"]), str(made["export"]), str(made["context"])
    adapt = ["adapt", run, "-v", "slip=0.1"]
    quick = ["--baselines", "", "--tasks", "1", "--episodes", "1", "--seeds", "0"]
    choices: list[Callable[[], list[str]]] = [
        lambda: ["play", export, "--episodes", data.draw(bad_count)],
        lambda: ["play", export, "--seed", data.draw(bad_seed)],
        lambda: ["play", export, "-v", f"seed={data.draw(not_an_int)}"],
        lambda: [*adapt, "--episodes", data.draw(bad_count), "-o", "out"],
        lambda: [*adapt, "--seed", data.draw(bad_seed), "-o", "out"],
        lambda: [*adapt, "-o", data.draw(bad_path)],
        lambda: ["export", run, "-o", data.draw(bad_path)],
        lambda: ["export", run, "-o", "out", "--opset", data.draw(not_an_int)],
        lambda: ["evaluate", run, *quick, "--trials", data.draw(bad_count)],
        lambda: ["evaluate", run, "--baselines", "", "--tasks", data.draw(bad_count)],
        lambda: ["evaluate", run, "--baselines", "", "--seeds", data.draw(bad_seed)],
        lambda: ["evaluate", run, *quick, "--plot", data.draw(bad_plot)],
        lambda: ["latents", context, "--plot", data.draw(bad_plot), "--tasks", "2"],
        lambda: ["latents", context, "--plot", "p.png", "--tasks", data.draw(bad_count)],
        lambda: ["games", "sample", "gridnav", "-n", data.draw(bad_count)],
        lambda: ["games", "sample", "gridnav", "--seed", data.draw(bad_seed)],
        lambda: ["games", "play", "gridnav", "--seed", data.draw(bad_seed)],
        lambda: ["games", "play", "gridnav", "-v", f"slip={data.draw(bad_float)}"],
        lambda: ["games", "show", data.draw(junk_text.filter(
            lambda s: s.strip().lower() not in BUILTIN_IDS))],
    ]
    return data.draw(st.sampled_from(choices))()


BUILTIN_IDS = {"gridnav", "pointnav", "cartpole", "duel"}


def with_a_file(args: list[str], here: Path) -> list[str]:
    """Make the ``a-file`` that the path strategies put paths under."""
    (here / "a-file").write_text("not a folder\n")
    return args


# -- 1. malformed CLI arguments -------------------------------------------------------------
@FUZZ
@given(data=st.data())
def test_malformed_train_arguments_are_refused_before_any_work(data: st.DataObject) -> None:
    args = train_args(data)
    with workspace() as here:
        with_a_file(args, here)
        before = snapshot(here)
        result = invoke(args)
        assert_refused(result, args)
        assert snapshot(here) == before and not (here / "run").exists()


@FUZZ
@given(data=st.data())
def test_malformed_arguments_of_the_other_commands_are_refused(data: st.DataObject,
                                                                made: dict[str, Path]) -> None:
    args = shipping_args(data, made)
    with workspace() as here:
        with_a_file(args, here)
        before = snapshot(here, *made.values())
        result = invoke(args)
        assert_refused(result, args)
        assert snapshot(here, *made.values()) == before, f"files changed by {args!r}"


# -- 2. config TOML files -------------------------------------------------------------------
VALID_CONFIG = {"game": "gridnav", "iterations": 1, "meta_batch": 2, "envs_per_task": 2,
                "device": "cpu"}
CONFIG_FIELDS = {"game": str, "algorithm": str, "iterations": int, "meta_batch": int,
                 "envs_per_task": int, "seed": int, "checkpoint_every": int,
                 "variant_split": str, "device": str, "share_policy": bool, "options": dict}
toml_scalar = st.one_of(st.integers(min_value=-2**63, max_value=2**63 - 1),
                        st.floats(allow_nan=True), st.booleans(), junk_text)
toml_value = st.recursive(toml_scalar, lambda inner: st.lists(inner, max_size=3), max_leaves=5)


def wrong_type(kind: type) -> st.SearchStrategy[Any]:
    """A TOML value that is not of ``kind`` (bool is not an int here)."""
    def is_wrong(value: Any) -> bool:
        if kind is int:
            return isinstance(value, bool) or not isinstance(value, int)
        return not isinstance(value, kind) or (kind is not bool and isinstance(value, bool))
    return toml_value.filter(is_wrong)


def toml_text(value: Any) -> str:
    """``value`` as TOML (strings, numbers, booleans, arrays; nan/inf spelt TOML's way)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return {"nan": "nan", "inf": "inf", "-inf": "-inf"}.get(repr(value), repr(value))
    if isinstance(value, (int, str)):
        return json.dumps(value)  # a TOML basic string is JSON-escaped text
    return "[" + ", ".join(toml_text(item) for item in value) + "]"


def toml_document(values: dict[str, Any]) -> str:
    lines = [f"{key} = {toml_text(v)}" for key, v in values.items() if not isinstance(v, dict)]
    for key, table in values.items():
        if isinstance(table, dict):
            lines += [f"[{key}]", *(f"{k} = {toml_text(v)}" for k, v in table.items())]
    return "\n".join(lines) + "\n"


def nested(depth: int, kind: str) -> str:
    """A value nested ``depth`` levels deep (JSON arrays, or TOML inline arrays)."""
    return "[" * depth + "1" + "]" * depth if kind == "array" else \
        '{"a": ' * depth + "1" + "}" * depth


@st.composite
def bad_config_file(draw: st.DrawFn) -> bytes:
    """The bytes of a ``--config`` file with one thing wrong in it."""
    kind = draw(st.sampled_from(["type", "unknown", "options", "encoding", "nesting",
                                 "bytes", "option-value"]))
    values: dict[str, Any] = dict(VALID_CONFIG)
    if kind == "type":
        name = draw(st.sampled_from(sorted(CONFIG_FIELDS)))
        values[name] = draw(wrong_type(CONFIG_FIELDS[name]))
    elif kind == "unknown":
        values["zz_" + draw(st.text(string.ascii_lowercase, min_size=1, max_size=8))] = 1
    elif kind == "options":
        values["options"] = draw(wrong_type(dict))
    elif kind == "option-value":
        values["options"] = {draw(st.sampled_from(["outer_lr", "inner_lr"])): draw(bad_float)}
    elif kind == "nesting":
        return f"game = \"gridnav\"\nx = {nested(MAX_NESTING * 40, 'array')}\n".encode()
    elif kind == "bytes":
        return draw(st.binary(min_size=1, max_size=64).filter(lambda b: b"game" not in b))
    text = toml_document(values)
    if kind == "encoding":  # a valid config but for an unknown key with non-ASCII, in UTF-16/Latin-1
        encoding = draw(st.sampled_from(["utf-16", "utf-16-le", "latin-1", "cp1252"]))
        return (text + "r\u00e9sum\u00e9 = 1\n").encode(encoding)
    return text.encode("utf-8")


@FUZZ
@given(content=bad_config_file())
def test_malformed_config_files_are_refused(content: bytes) -> None:
    with workspace() as here:
        (here / "config.toml").write_bytes(content)
        args = ["train", "--config", "config.toml", "--run-dir", "run"]
        before = snapshot(here)
        result = invoke(args)
        assert_refused(result, args + [f"<{content[:80]!r}>"])
        assert snapshot(here) == before and not (here / "run").exists()


# -- 3. variant files -----------------------------------------------------------------------
GRIDNAV_PARAMS = {"level": {"seed": (0, 999999)}, "rules": {"slip": (0.0, 0.3)}}


@st.composite
def bad_variant_file(draw: st.DrawFn) -> tuple[str, bytes]:
    """A variant file (name, bytes) with one thing wrong in it."""
    kind = draw(st.sampled_from(["unknown", "range", "type", "top", "encoding", "nesting",
                                 "bytes", "part"]))
    suffix = draw(st.sampled_from([".json", ".toml"]))
    variant: Any = {"level": {"seed": 3}, "rules": {}}
    if kind == "unknown":
        variant["rules"]["zz_" + draw(st.text(string.ascii_lowercase, min_size=1,
                                              max_size=6))] = 1
    elif kind == "range":
        variant["level"]["seed"] = draw(st.one_of(st.integers(max_value=-1),
                                                  st.integers(min_value=10**6, max_value=2**62)))
    elif kind == "type":
        variant["level"]["seed"] = draw(wrong_type(int).filter(lambda v: not isinstance(v, float)
                                                               or not float(v).is_integer()))
    elif kind == "top":
        variant = draw(st.one_of(st.lists(st.integers(), max_size=3), st.integers(), junk_text))
        suffix = ".json"
    elif kind == "part":
        variant["level"] = draw(st.one_of(st.integers(), st.lists(st.integers(), max_size=2)))
        suffix = ".json"
    elif kind == "nesting":
        return "v.json", nested(MAX_NESTING * 40, draw(st.sampled_from(["array", "object"]))
                                ).encode()
    elif kind == "bytes":
        return "v" + suffix, draw(st.binary(min_size=1, max_size=64))
    if suffix == ".toml" and isinstance(variant, dict):
        text = "\n".join(f"[{part}]\n" + "".join(f"{k} = {toml_text(v)}\n"
                                                 for k, v in values.items())
                         for part, values in variant.items())
    else:
        text = json.dumps(variant)
    if kind == "encoding":
        return "v" + suffix, (text.rstrip("}") + (', "r\u00e9": 1}' if suffix == ".json"
                                                  else "\nr\u00e9 = 1\n")).encode("utf-16")
    return "v" + suffix, text.encode("utf-8")


@FUZZ
@given(file=bad_variant_file(), command=st.sampled_from(["games", "play"]))
def test_malformed_variant_files_are_refused(file: tuple[str, bytes], command: str,
                                             made: dict[str, Path]) -> None:
    name, content = file
    with workspace() as here:
        (here / name).write_bytes(content)
        args = (["games", "play", "gridnav", "--steps", "1"] if command == "games"
                else ["play", str(made["export"]), "--episodes", "1"]) + ["--variant-file", name]
        before = snapshot(here, made["export"])
        result = invoke(args)
        assert_refused(result, args + [f"<{content[:80]!r}>"])
        assert snapshot(here, made["export"]) == before


@st.composite
def layout_text(draw: st.DrawFn) -> str:
    """gridnav's ``level.layout``: a generated level with one character replaced (often
    still valid), or rows of random cells (mostly not)."""
    if draw(st.booleans()):
        rows = draw(st.integers(3, 11))
        return "/".join(draw(st.text(".#AGx", min_size=rows - 1, max_size=rows + 1))
                        for _ in range(rows))
    text = layout_of(generate_level(draw(st.integers(0, 999)), draw(st.integers(5, 9)), 0.2))
    index = draw(st.integers(0, len(text) - 1))
    return text[:index] + draw(st.sampled_from(".#AGx/")) + text[index + 1:]


@FUZZ
@given(text=layout_text())
def test_a_layout_is_played_or_refused_in_one_line(text: str) -> None:
    args = ["games", "play", "gridnav", "--steps", "1", "-v", f"level.layout={text}"]
    result = invoke(args)
    try:
        parse_layout(text)
    except ValueError as exc:
        assert_refused(result, args)
        problem = f"more than the limit of {len(layout_of(generate_level(0, 9, 0.0)))}" \
            if len(text) > 89 else str(exc)  # the length limit: the longest (9 x 9) layout
        assert "Error: level.layout: " in result.output and problem in result.output
    else:
        assert result.exit_code == 0, result.output
        assert "\n" + text.replace("/", "\n") + "\n" in result.output  # the first frame


# -- 4. manifests (policy.json) and the files they list -------------------------------------
ESSENTIAL = {("format",): True, ("game",): True, ("observation_space", "shape"): True,
             ("action_space", "n"): True, ("action_space", "type"): True,
             ("files", "policy.onnx", "sha256"): True, ("files", "policy.onnx", "bytes"): False,
             ("files", "policy.onnx", "path"): False, ("files",): True,
             ("observation_space",): True, ("action_space",): True}  # path: may it be left out?


def leaf_paths(value: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value in nested dicts and lists."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaf_paths(item, prefix + (key,))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from leaf_paths(item, prefix + (index,))


def replaced(document: Any, path: tuple[Any, ...], value: Any) -> Any:
    """A copy of ``document`` with the value at ``path`` replaced (``...``: removed)."""
    if not path:
        return value
    copy = document.copy()
    if len(path) == 1 and value is ...:
        del copy[path[0]]
        return copy
    copy[path[0]] = replaced(copy[path[0]], path[1:], value)
    return copy


json_value = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(),
                                    st.floats(allow_nan=False), junk_text),
                          lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                  st.dictionaries(junk_text, inner, max_size=3)),
                          max_leaves=6)


def same_type(a: Any, b: Any) -> bool:
    kinds = (bool, int, float, str, list, dict, type(None))
    return next(k for k in kinds if isinstance(a, k)) is next(k for k in kinds if isinstance(b, k))


@contextlib.contextmanager
def export_copy(made: dict[str, Path]) -> Iterator[Path]:
    with workspace() as here:
        shutil.copytree(made["export"], here / "export")
        yield here / "export"


@FUZZ
@given(data=st.data())
def test_a_manifest_with_an_essential_field_of_the_wrong_type_is_refused(
        data: st.DataObject, made: dict[str, Path]) -> None:
    with export_copy(made) as folder:
        manifest = json.loads((folder / "policy.json").read_text())
        path = data.draw(st.sampled_from(sorted(ESSENTIAL)))
        current = manifest
        for key in path:
            current = current[key]
        wrong = json_value.filter(lambda v: not same_type(v, current))
        value = data.draw(st.one_of(st.just(...), wrong) if ESSENTIAL[path] else wrong)
        (folder / "policy.json").write_text(json.dumps(replaced(manifest, path, value)))
        args = ["play", str(folder), "--episodes", "1"]
        before = snapshot(folder.parent)
        assert_refused(invoke(args), args + [f"{path} = {value!r}"])
        assert snapshot(folder.parent) == before


@FUZZ
@given(data=st.data())
def test_any_manifest_change_is_played_or_refused_never_a_traceback(
        data: st.DataObject, made: dict[str, Path]) -> None:
    with export_copy(made) as folder:
        manifest = json.loads((folder / "policy.json").read_text())
        path = data.draw(st.sampled_from(list(leaf_paths(manifest))[1:]))
        value = data.draw(st.one_of(st.just(...), json_value))
        (folder / "policy.json").write_text(json.dumps(replaced(manifest, path, value)))
        args = ["play", str(folder), "--episodes", "1"]
        before = snapshot(folder.parent)
        result = invoke(args)
        if result.exit_code != 0:
            assert_refused(result, args + [f"{path} = {value!r}"])
        assert snapshot(folder.parent) == before


@FUZZ
@given(data=st.data(), name=st.sampled_from(["policy.onnx", "policy.json"]))
def test_a_corrupted_export_file_is_refused(data: st.DataObject, name: str,
                                            made: dict[str, Path]) -> None:
    with export_copy(made) as folder:
        content = bytearray((folder / name).read_bytes())
        corrupted = corrupt(data, bytes(content))
        assume(corrupted != content)  # two flips of one byte can undo each other
        (folder / name).write_bytes(corrupted)
        args = ["play", str(folder), "--episodes", "1"]
        result = invoke(args)
        if name == "policy.onnx" or result.exit_code != 0:  # a changed ONNX file is never played
            assert_refused(result, args + [f"<{name} corrupted>"])


# -- 5. checkpoints and run configs ---------------------------------------------------------
def corrupt(data: st.DataObject, content: bytes) -> bytes:
    """``content`` with bytes flipped, cut short, zeroed or replaced."""
    kind = data.draw(st.sampled_from(["flip", "truncate", "zero", "replace", "append"]))
    buffer = bytearray(content)
    if kind == "flip":
        for _ in range(data.draw(st.integers(1, 4))):
            index = data.draw(st.integers(0, len(buffer) - 1))
            buffer[index] ^= data.draw(st.integers(1, 255))
        return bytes(buffer)
    if kind == "truncate":
        return bytes(buffer[:data.draw(st.integers(0, len(buffer) - 1))])
    if kind == "zero":
        start = data.draw(st.integers(0, len(buffer) - 1))
        length = data.draw(st.integers(1, 512))
        buffer[start:start + length] = bytes(len(buffer[start:start + length]))
        return bytes(buffer)
    if kind == "append":
        return content + data.draw(st.binary(min_size=1, max_size=64))
    return data.draw(st.binary(max_size=256))


def same_payload(a: Any, b: Any) -> bool:
    """Two loaded checkpoints hold the same values (tensors compared bit for bit)."""
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and \
            all(same_payload(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and \
            all(same_payload(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


@contextlib.contextmanager
def run_copy(made: dict[str, Path], algorithm: str) -> Iterator[Path]:
    with workspace() as here:
        shutil.copytree(made[algorithm], here / "run")
        yield here / "run"


@FUZZ
@given(data=st.data(), algorithm=st.sampled_from(["maml", "context"]))
def test_a_corrupted_checkpoint_is_refused_or_loads_exactly_what_was_saved(
        data: st.DataObject, algorithm: str, made: dict[str, Path]) -> None:
    with run_copy(made, algorithm) as run:
        original = load_checkpoint(run / "checkpoint.pt")
        (run / "checkpoint.pt").write_bytes(corrupt(data, (run / "checkpoint.pt").read_bytes()))
        before = snapshot(run)
        args = ["train", "--resume", str(run)]  # the run is complete: load, check, stop
        result = invoke(args)
        if result.exit_code == 0:
            assert same_payload(load_checkpoint(run / "checkpoint.pt"), original)
        else:
            assert_refused(result, args)
        assert snapshot(run) == before


RUN_FIELDS = {("train", "iterations"): int, ("train", "seed"): int, ("train", "meta_batch"): int,
              ("train", "game"): str, ("train", "algorithm"): str, ("train", "options"): dict,
              ("train", "share_policy"): bool, ("game",): str, ("algorithm",): str,
              ("train",): dict, ("format",): str}


@FUZZ
@given(data=st.data(), command=st.sampled_from(["resume", "export", "evaluate"]))
def test_a_run_config_with_a_field_of_the_wrong_type_is_refused(
        data: st.DataObject, command: str, made: dict[str, Path]) -> None:
    with run_copy(made, "maml") as run:
        config = json.loads((run / "config.json").read_text())
        path = data.draw(st.sampled_from(sorted(RUN_FIELDS)))
        kind = RUN_FIELDS[path]
        removable = len(path) == 1  # a train field left out takes its default: not an error
        wrong = json_value.filter(lambda v: not isinstance(v, kind)
                                  or (kind is int and isinstance(v, bool)))
        value = data.draw(st.one_of(st.just(...), wrong) if removable else wrong)
        (run / "config.json").write_text(json.dumps(replaced(config, path, value)))
        args = {"resume": ["train", "--resume", str(run)],
                "export": ["export", str(run), "-o", str(run.parent / "out")],
                "evaluate": ["evaluate", str(run), "--baselines", "", "--tasks", "1",
                             "--episodes", "1", "--seeds", "0"]}[command]
        before = snapshot(run.parent)
        assert_refused(invoke(args), args + [f"{path} = {value!r}"])
        assert snapshot(run.parent) == before


@pytest.mark.parametrize("field,value", [(("algorithm",), "rl2"), (("game",), "pointnav")])
def test_a_run_config_whose_fields_disagree_is_refused(field: tuple[str, ...], value: str,
                                                       made: dict[str, Path]) -> None:
    with run_copy(made, "maml") as run:
        config = json.loads((run / "config.json").read_text())
        (run / "config.json").write_text(json.dumps(replaced(config, field, value)))
        for args in (["train", "--resume", str(run)],
                     ["evaluate", str(run), "--baselines", "", "--tasks", "1"]):
            before = snapshot(run.parent)
            result = invoke(args)
            assert_refused(result, args)
            assert "disagree" in result.output or field[0] in result.output
            assert snapshot(run.parent) == before


@FUZZ
@given(seed=bad_seed, count=bad_count, number=bad_float)
def test_the_strategies_only_draw_malformed_values(seed: str, count: str, number: str) -> None:
    """A guard on the suite itself: the 'bad' strategies never produce a valid value."""
    assert not (_parses(int, seed) and 0 <= int(seed) <= SEED_MAX)
    assert not (_parses(int, count) and 1 <= int(count) < 10**12)
    assert not (_parses(float, number) and abs(float(number)) < 1e300)
