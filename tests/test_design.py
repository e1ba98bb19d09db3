"""The package's shape: layers without cycles, one configuration, CLI flags that match it."""
import ast
import dataclasses
import json
from pathlib import Path

import pytest

from classicpr.cli import CONFIG_FLAGS, build_parser, config_from_args, main
from classicpr.config import PRESETS, SECTIONS, Config

PACKAGE = Path(__file__).resolve().parents[1] / "classicpr"

#: Layer of every module: a module may import only from its own layer or those below.
LAYERS = {
    0: {"errors", "config", "io", "regions", "parallel", "blas"},
    1: {"embedding", "features", "vocabulary", "invfile", "verify", "views", "objects", "masks", "datasets",
        "metrics", "viz", "formats"},
    2: {"index"},
    3: {"pipeline"},
    4: {"evaluate"},
    5: {"cli", "demo", "bench", "download", "serve", "__init__"},
}


def _internal_imports(path: Path):
    """classicpr modules imported anywhere in a file (module level or inside functions)."""
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                out.add(node.module.split(".")[0])
            else:
                out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("classicpr."):
            out.add(node.module.split(".")[1])
    return out


def _graph():
    return {p.stem: _internal_imports(p) for p in PACKAGE.glob("*.py")}


def test_every_module_has_a_layer():
    layered = set().union(*LAYERS.values())
    assert set(_graph()) == layered


def test_imports_point_downward_only():
    layer = {m: k for k, mods in LAYERS.items() for m in mods}
    bad = [(m, d) for m, deps in _graph().items() for d in deps
           if d in layer and layer[d] > layer[m]]
    assert not bad, f"upward imports (module, imported): {bad}"


def _find_cycle(graph):
    state, stack = {}, []

    def visit(node):
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt)
                if found:
                    return found
        state[node] = 2
        stack.pop()
        return None
    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found:
                return found
    return None


def test_no_import_cycle():
    assert _find_cycle(_graph()) is None, _find_cycle(_graph())


def test_cycle_finder_finds_a_planted_cycle():
    assert _find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _find_cycle({"a": {"b"}, "b": set()}) is None


# ---------------------------------------------------------------- configuration
def test_config_round_trips_and_rejects_unknown_keys():
    cfg = Config.preset("paper")
    assert Config.from_dict(json.loads(cfg.to_json())) == cfg
    with pytest.raises(ValueError, match="known verify keys: shortlist, method"):
        Config.from_dict({"verify": {"ratioo": 0.8}})
    with pytest.raises(ValueError, match="known: \\['features'"):
        Config.from_dict({"verfy": {}})
    with pytest.raises(ValueError, match="known mask keys"):
        Config().updated({"mask.methd": "projected"})


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_field_is_validated(section):
    """Each field refuses a value of the wrong type, and one outside its choices or range."""
    cls = SECTIONS[section]
    for f in dataclasses.fields(cls):
        wrong_type = "text" if not isinstance(f.default, str) else 3
        with pytest.raises(ValueError, match=f"{section}.{f.name}"):
            cls(**{f.name: wrong_type})
        meta = f.metadata
        if meta["choices"]:
            with pytest.raises(ValueError, match="must be one of"):
                cls(**{f.name: "no-such-choice" if isinstance(f.default, str) else -12345})
        if meta["low"] is not None:
            below = meta["low"] - 1
            with pytest.raises(ValueError, match=f"{section}.{f.name} must be"):
                cls(**{f.name: type(f.default or 0)(below)})
        if meta["none"] is None:
            with pytest.raises(ValueError, match="cannot be None"):
                cls(**{f.name: None})
        assert f.metadata["help"], f"{section}.{f.name} has no help text"


def test_presets():
    assert Config.preset("default") == Config()
    fast, paper = Config.preset("fast"), Config.preset("paper")
    assert (fast.verify.method, fast.mask.method) == ("words", "projected")
    assert paper.verify.shortlist is None and paper.mask.method == "projected"
    assert not paper.verify.refit
    with pytest.raises(ValueError, match="presets: default, fast, paper"):
        Config.preset("quick")
    for name, updates in PRESETS.items():  # every preset key is a real key
        Config().updated(updates)


def test_cli_flags_match_the_config():
    """Each shortcut flag is a config key with the config's choices, and parses to the
    config's type; preset, flags and --set apply in that order."""
    parser = build_parser()
    for group in CONFIG_FLAGS.values():
        for flag, key in group.items():
            section, name = key.split(".")
            assert name in {f.name for f in dataclasses.fields(SECTIONS[section])}, key
    args = parser.parse_args(["evaluate", "root", "--name", "x", "--preset", "fast",
                              "--shortlist", "all", "--mask", "grabcut", "--vocab-size", "512",
                              "--set", "verify.ratio=0.7", "--set", "mask.top=5"])
    cfg = config_from_args(args)
    assert cfg.verify.method == "words" and cfg.verify.shortlist is None
    assert cfg.mask.method == "grabcut" and cfg.mask.top == 5 and cfg.verify.ratio == 0.7
    assert cfg.vocabulary.size == 512
    with pytest.raises(SystemExit):
        parser.parse_args(["query", "i", "q.jpg", "--out", "o", "--mask", "nope"])
    args = parser.parse_args(["query", "i", "q.jpg", "--out", "o", "--set", "verify.shortlist=-1"])
    with pytest.raises(ValueError, match="verify.shortlist must be >= 0"):
        config_from_args(args)


def test_global_flags_work_after_the_subcommand():
    parser = build_parser()
    assert parser.parse_args(["evaluate", "r", "--name", "x", "-q"]).quiet
    assert parser.parse_args(["-q", "evaluate", "r", "--name", "x"]).quiet
    assert not parser.parse_args(["evaluate", "r", "--name", "x"]).quiet
    a = parser.parse_args(["query", "i", "q", "--out", "o", "-v", "--backend", "dask"])
    assert a.verbose and a.backend == "dask"


def test_config_command_prints_presets_and_keys(capsys):
    assert main(["config", "--preset", "paper"]) == 0
    assert json.loads(capsys.readouterr().out)["verify"]["shortlist"] is None
    assert main(["config", "--list"]) == 0
    text = capsys.readouterr().out
    for section, cls in SECTIONS.items():
        for f in dataclasses.fields(cls):
            assert f"{section}.{f.name} = " in text
    assert main(["config", "--set", "verify.nope=1"]) == 2
