"""The params schema is the one source of defaults and types: params.yaml spells it out, dvc.yaml
lists exactly its keys, MLproject's parameters exist in it, profiles are overlays of known keys,
the keys every stage shares live once (under `study`), and a bad or missing params file is one
line and exit 2."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from pie_mlops.util.errors import PieError
from pie_mlops.config.params import profile_path
from pie_mlops.config.plans import load_all
from pie_mlops.config.plans import resolve
from pie_mlops.config.schema import SECTIONS, STUDY_KEYS, all_defaults, defaults, own, shared_keys

ROOT = Path(__file__).resolve().parents[2]
STAGE_ENTRY_POINTS = ("tune", "train", "prune", "compare", "report")
CLI_ONLY = {"compare": {"predictions"}}  # file mode's input, not a study setting
READS_STUDY = {"check": {"data_dir"}}  # `pie-mlops check`'s --data-dir default: a study key, no plan field


def test_params_yaml_spells_out_exactly_the_schema_defaults():
    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    assert raw == all_defaults()
    assert load_all(ROOT / "params.yaml") == all_defaults()


@pytest.mark.parametrize("profile", sorted(p.stem for p in (ROOT / "profiles").glob("*.yaml")))
def test_profiles_are_overlays_of_known_keys_that_state_only_what_differs(profile):
    path = ROOT / "profiles" / f"{profile}.yaml"
    overlay = yaml.safe_load(path.read_text()) or {}
    load_all(path)  # every key known and well typed, or this raises
    defaults = all_defaults()
    for section, values in overlay.items():
        for key, value in values.items():
            assert value != defaults[section][key], f"{profile}: {section}.{key} repeats the default"


def test_every_dvc_stage_lists_exactly_the_schema_keys_of_its_section():
    """Its own section's keys, and the study keys its plan takes (study.dataset, ...)."""
    stages = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    for name, stage in stages.items():
        body = stage.get("do", stage)
        listed = set(body.get("params", []))
        expected = {f"{name}.{k}" for k in own(name, dict.fromkeys(SECTIONS[name].model_fields))}
        expected |= {f"study.{k}" for k in (*shared_keys(name), *READS_STUDY.get(name, ()))}
        if stage.get("foreach") == "${study.arch}":
            expected.discard("study.arch")  # the stage's own architecture comes from foreach
        assert listed == expected, f"dvc.yaml stage {name}: missing {expected - listed}, extra {listed - expected}"


def test_the_shared_keys_live_once_and_reach_every_stage_plan(tmp_path):
    assert set(all_defaults()["study"]) == set(STUDY_KEYS)
    assert not any(set(values) & set(STUDY_KEYS) for name, values in all_defaults().items() if name != "study")
    path = tmp_path / "mine.yaml"
    path.write_text("study: {dataset: my_reviews, arch: [bilstm], model_path: enc, data_dir: elsewhere}\n")
    for section in ("materialize", "tune", "train", "prune", "compare"):
        plan = resolve(section, path)
        assert {k: getattr(plan, k) for k in shared_keys(section)} == \
            {k: v for k, v in {"dataset": "my_reviews", "arch": ["bilstm"], "model_path": "enc",
                               "data_dir": "elsewhere"}.items() if k in shared_keys(section)}, section
    assert shared_keys("compare") == ("dataset", "arch", "data_dir") and shared_keys("materialize") == ("data_dir",)
    # a command's option still narrows one stage's plan, for one run
    assert resolve("train", path, {"dataset": "other", "arch": "bert"}).dataset == "other"
    assert load_all(path)["study"]["dataset"] == "my_reviews" and "dataset" not in load_all(path)["train"]


@pytest.mark.parametrize("text, section, match", [
    ("train:\n  dataset: imdb\n", "train", r"^p\.yaml: train\.dataset is a study key, shared by every stage: set study\.dataset$"),
    ("compare:\n  arch: [bilstm]\n", "compare", r"^p\.yaml: compare\.arch is a study key, .*: set study\.arch$"),
    ("study:\n  dataset: ../x\n", "train", r"^p\.yaml: study\.dataset: Value error, dataset '\.\./x' is not a dataset name"),
    ("study:\n  arch: [gpt]\n", "compare", r"^p\.yaml: study\.arch\.0: Input should be 'bert' or 'bilstm'"),
    ("study:\n  datset: imdb\n", "materialize", r"^p\.yaml: unknown key study\.datset; known keys of 'study': dataset, arch"),
    ("study: [imdb]\n", "tune", r"^p\.yaml: section 'study' must be a mapping"),
])
def test_a_bad_shared_key_names_the_file_and_the_key(tmp_path, monkeypatch, text, section, match):
    monkeypatch.chdir(tmp_path)
    Path("p.yaml").write_text(text)
    with pytest.raises(PieError, match=match):
        resolve(section, "p.yaml")


def test_mlproject_parameters_exist_in_the_schema():
    entry_points = yaml.safe_load((ROOT / "MLproject").read_text())["entry_points"]
    for name in STAGE_ENTRY_POINTS:
        given = set(entry_points[name].get("parameters", {}))
        unknown = given - set(SECTIONS[name].model_fields) - CLI_ONLY.get(name, set())
        assert not unknown, f"MLproject {name}: parameters {unknown} are not keys of the {name} section"


def test_a_missing_params_file_is_an_error_not_the_defaults(tmp_path):
    with pytest.raises(PieError, match="no such params file"):
        resolve("train", tmp_path / "missing.yaml")


@pytest.mark.parametrize("text, match", [
    ("- 1\n", "must be a mapping of sections"),
    ("train: 3\n", "section 'train' must be a mapping"),
    ("train:\n  sedes: [1]\n", "unknown key train.sedes"),
    ("train:\n  seeds: {bert: [a]}\n", r"train\.seeds\.bert\.0: .*integer"),
    ("prune:\n  batch_size: abc\n", r"prune\.batch_size: .*integer"),
    ("prune:\n  threshold: layer\n", r"prune\.threshold: .*'global' or 'per_layer'"),
    ("train: {seeds: [0}\n", "not valid YAML"),
])
def test_a_bad_params_file_names_the_key(tmp_path, text, match):
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PieError, match=match):
        resolve("train" if "prune" not in text else "prune", path)


def test_an_overlay_changes_only_what_it_states(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("study: {dataset: my_reviews}\ntrain: {seeds: {bilstm: [0, 1]}}\n")
    train = resolve("train", path).model_dump()
    # a per-architecture value overlays per architecture: bert keeps its default seeds
    assert train["dataset"] == "my_reviews" and train["seeds"] == {"bert": [0, 1, 2], "bilstm": [0, 1]}
    assert {k: v for k, v in train.items() if k not in ("dataset", "seeds")} == \
        {k: v for k, v in defaults("train").items() if k not in ("dataset", "seeds")}


@pytest.mark.parametrize("name", ["../x", "/etc/passwd", "a/b", ".."])
def test_a_profile_is_a_name_not_a_path(name):
    with pytest.raises(PieError, match="not a path"):
        profile_path(name)
