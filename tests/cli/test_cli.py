"""The command line: help texts, argument errors, and train -> sample -> kid end to end.

The end-to-end commands run in this process through ``cli.main`` (the same code as
``python -m ddim_tutorial``, without paying for a second Keras start); a subprocess checks
that the module entry point works and that ``--help`` never imports Keras.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import keras
import pytest
from PIL import Image

from ddim_tutorial.cli import commands
from ddim_tutorial.cli import parser as cli
from ddim_tutorial.runtime import backends, distribution
from ddim_tutorial.training.checkpoints import read_training_state

REPO = Path(__file__).resolve().parents[2]
FLOWERS12 = REPO.parent / "shared" / "data" / "flowers12"


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2, err
    lines = [line for line in err.splitlines() if not line.startswith("warning: ")]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


# ------------------------------------------------------------------------------- help
@pytest.mark.parametrize("command, expected", [
    ([], ["train", "sample", "kid", "--backend", "examples:", "Exit status"]),
    (["train"], ["--preset", "--data-dir", "--source", "--epochs", "--out", "--resume", "--batch-size",
                 "--seed", "--set", "--devices", "examples:", "history.csv", "exit 130/143"]),
    (["sample"], ["--checkpoint", "--steps", "--num", "--out", "--eta", "--seed", "--min-signal-rate",
                  "--max-signal-rate", "--sampler", "dpm++2s", "examples:"]),
    (["kid"], ["--checkpoint", "--data-dir", "--num", "--steps", "--weights", "examples:", "DDIM_INCEPTION_WEIGHTS"]),
])
def test_help_texts_document_options_and_examples(capsys, command, expected):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    text = capsys.readouterr().out
    for word in expected:
        assert word in text, word


def test_module_entry_point_help_does_not_import_keras():
    code = ("import sys\nfrom ddim_tutorial.__main__ import main\ntry:\n    main(['sample', '--help'])\n"
            "except SystemExit as exit:\n    print('exit', exit.code)\n"
            "print('keras' in sys.modules, 'tensorflow' in sys.modules)\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["exit 0", "False False"]
    assert "python -m ddim_tutorial sample" in result.stdout


# ---------------------------------------------------------------------------- parsing
def test_set_values_are_read_as_json_then_text():
    assert commands.parse_overrides(["learning_rate=3e-4", "widths=[16, 32]", "mixed_precision=null", "seed=None",
                                "jit_compile=auto", "augment_flip=true", "dataset_name=my=flowers"]) == {
        "learning_rate": 3e-4, "widths": [16, 32], "mixed_precision": None, "seed": None,
        "jit_compile": "auto", "augment_flip": True, "dataset_name": "my=flowers"}


@pytest.mark.parametrize("argv, fragments", [
    pytest.param(["train", "--preset", "smoke", "--out", "x", "--set", "learning_rate"],
                 ["--set 'learning_rate' is invalid"], id="set_without_value"),
    pytest.param(["train", "--preset", "smoke", "--out", "x", "--set", "lr=0.1"], ["no field(s) lr", "learning_rate"],
                 id="set_unknown_field"),
    pytest.param(["train", "--preset", "smoke", "--out", "x", "--set", "image_size=30"], ["image_size=30", "try 32"],
                 id="set_image_size_not_divisible"),
    pytest.param(["train", "--preset", "smoke", "--out", "x", "--set", "min_signal_rate=0"], ["min_signal_rate=0"],
                 id="set_signal_rate_out_of_range"),
    pytest.param(["train", "--out", "x"], ["--preset NAME", "--resume"], id="no_preset"),
    pytest.param(["train", "--out", "x", "--resume", "--overwrite"], ["contradict"], id="resume_and_overwrite"),
    pytest.param(["train", "--out", "nowhere", "--resume"], ["no checkpoint at", "last"], id="resume_nothing"),
    pytest.param(["train", "--preset", "smoke", "--out", "x", "--source", "tfds", "--data-dir", "d"], ["conflicts"],
                 id="data_dir_with_tfds"),
])
def test_bad_train_arguments_are_one_line_errors(capsys, tmp_path, monkeypatch, argv, fragments):
    monkeypatch.chdir(tmp_path)
    assert_one_line_error(*run_cli(capsys, *argv)[::2], *fragments)


def test_unknown_preset_and_backend_are_refused_by_the_parser(capsys):
    for argv in (["train", "--preset", "huge", "--out", "x"], ["--backend", "numpy", "sample"]):
        with pytest.raises(SystemExit) as exit_info:
            cli.main(argv)
        assert exit_info.value.code == 2
        assert "invalid choice" in capsys.readouterr().err


def test_sample_offers_exactly_the_packages_samplers(capsys):
    from ddim_tutorial.core.sampling import SAMPLERS  # the parser names them without importing Keras

    sample = next(action for action in cli.build_parser()._subparsers._group_actions[0].choices["sample"]._actions
                  if action.dest == "sampler")
    assert tuple(sample.choices) == SAMPLERS and sample.default == "ddim"
    with pytest.raises(SystemExit):
        cli.main(["sample", "--bundled", "flowers32", "--sampler", "heun", "--out", "g.png"])
    assert "invalid choice: 'heun'" in capsys.readouterr().err


def test_unknown_keras_backend_variable(capsys, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", "theano")
    code, _, err = run_cli(capsys, "sample", "--checkpoint", "x", "--out", "g.png")
    assert_one_line_error(code, err, "KERAS_BACKEND='theano'", "tensorflow, jax or torch")


def test_backend_cannot_change_after_keras_is_imported(capsys):
    other = "jax" if keras.backend.backend() != "jax" else "torch"
    code, _, err = run_cli(capsys, "--backend", other, "sample", "--checkpoint", "x", "--out", "g.png")
    assert_one_line_error(code, err, f"--backend {other} cannot take effect", "fresh process")


def test_backend_whose_package_is_missing(monkeypatch):
    monkeypatch.delitem(sys.modules, "keras")  # as in a fresh process, before Keras is imported
    monkeypatch.setenv("KERAS_BACKEND", "tensorflow")  # restored afterwards
    monkeypatch.setattr(backends.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(cli.CLIError, match="the jax backend needs the 'jax' package, which is not installed"):
        cli._select_backend("jax")


def test_devices_goes_to_configure_devices(capsys, monkeypatch):
    calls = []

    def fake_configure(n):
        calls.append(n)
        raise ValueError(f"devices={n} is invalid: only 1 device here (fake).")

    monkeypatch.setattr(distribution, "configure_devices", fake_configure)
    code, _, err = run_cli(capsys, "train", "--preset", "smoke", "--out", "x", "--devices", "3")
    assert calls == [3]
    assert_one_line_error(code, err, "devices=3 is invalid")


# ------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def data_args():
    if FLOWERS12.is_dir():
        return ["--data-dir", str(FLOWERS12)]
    return ["--source", "synthetic"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory, data_args):
    out = tmp_path_factory.mktemp("cli") / "run"
    code = cli.main(["train", "--preset", "smoke", *data_args, "--out", str(out), "--epochs", "1",
                     "--steps-per-epoch", "2", "--verbose", "0", "--set", "dataset_repetitions=1"])
    assert code == 0
    return out


def test_train_writes_the_run_folder(trained):
    assert read_training_state(trained / "last")["epoch"] == 1
    assert (trained / "best" / "model.weights.h5").is_file()
    assert (trained / "samples" / "epoch_001.png").is_file()
    assert (trained / "history.csv").read_text().startswith("epoch,")


def test_train_refuses_to_overwrite_a_run_without_resume(capsys, trained):
    code, _, err = run_cli(capsys, "train", "--preset", "smoke", "--source", "synthetic", "--out", str(trained))
    assert_one_line_error(code, err, "already holds a checkpoint", "--resume", "--overwrite")


def test_sample_saves_a_grid(capsys, trained, tmp_path):
    picture = tmp_path / "pictures" / "grid.png"
    code, out, err = run_cli(capsys, "sample", "--checkpoint", str(trained / "last"), "--steps", "2", "--num", "6",
                             "--cols", "3", "--eta", "0.5", "--seed", "4", "--out", str(picture))
    assert code == 0, err
    assert f"Saved 6 samples (2 steps, eta=0.5, seed 4) to {picture}" in out
    with Image.open(picture) as image:
        assert image.format == "PNG" and image.width > image.height  # 3 columns, 2 rows


@pytest.mark.parametrize("extra, fragments", [
    pytest.param(["--steps", "0"], ["diffusion_steps=0 is invalid"], id="steps_zero"),
    pytest.param(["--num", "0"], ["num_images=0 is invalid"], id="num_zero"),
    pytest.param(["--eta", "1.5"], ["eta=1.5 is invalid"], id="eta_above_one"),
    pytest.param(["--min-signal-rate", "0.99"], ["min_signal_rate=0.99", "max_signal_rate"], id="min_above_max"),
    pytest.param(["--max-signal-rate", "1.5"], ["max_signal_rate=1.5"], id="max_signal_rate_above_one"),
    pytest.param(["--seed", "-1"], ["seed=-1 is invalid"], id="seed_negative"),
    pytest.param(["--sampler", "dpm++2s", "--eta", "0.5"], ["sampler='dpm++2s' with eta=0.5 is invalid"],
                 id="second_order_sampler_with_eta"),
])
def test_bad_sample_arguments(capsys, trained, tmp_path, extra, fragments):
    code, _, err = run_cli(capsys, "sample", "--checkpoint", str(trained / "last"), "--out",
                           str(tmp_path / "g.png"), "--steps", "2", *extra)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize("checkpoint, out, fragments", [
    pytest.param("missing", "g.png", ["no checkpoint at", "does not exist"], id="missing_checkpoint"),
    pytest.param(None, "g.xyz", ["--out", "g.xyz", ".png"], id="unknown_picture_format"),
    pytest.param(None, ".", ["is a folder"], id="out_is_a_folder"),
])
def test_sample_checkpoint_and_output_errors(capsys, trained, tmp_path, monkeypatch, checkpoint, out, fragments):
    monkeypatch.chdir(tmp_path)
    checkpoint = checkpoint or str(trained / "last")
    assert_one_line_error(*run_cli(capsys, "sample", "--checkpoint", checkpoint, "--out", out)[::2], *fragments)


def test_kid_prints_mean_and_std(capsys, trained, data_args):
    code, out, err = run_cli(capsys, "kid", "--checkpoint", str(trained / "last"), *data_args, "--num", "8",
                             "--steps", "2", "--weights", "none", "--batch-size", "4")
    assert code == 0, err
    assert out.startswith("KID = ") and " ± " in out and "(8 real, 8 generated)" in out
    assert "warning: KID with weights=None" in err  # said once, on one line


def test_kid_errors(capsys, trained, data_args, monkeypatch):
    checkpoint = str(trained / "last")
    code, _, err = run_cli(capsys, "kid", "--checkpoint", checkpoint, *data_args, "--num", "100000",
                           "--weights", "none")
    assert_one_line_error(code, err, "--num 100000 is more than the", "validation images")
    monkeypatch.setenv("DDIM_INCEPTION_WEIGHTS", str(Path(checkpoint) / "missing.h5"))
    code, _, err = run_cli(capsys, "kid", "--checkpoint", checkpoint, *data_args, "--num", "8", "--steps", "2",
                           "--batch-size", "4")
    assert_one_line_error(code, err, "DDIM_INCEPTION_WEIGHTS=", "names no existing file")
