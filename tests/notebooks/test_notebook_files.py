"""The notebook files, their environment files, and the lesson helpers they rely on.

Structure checks need no kernel: outputs are stripped, every lesson has its badges, the Colab
install cell, goals, an exercise with a hidden solution and a recap, and no lesson re-defines
package code. The write-it-yourself exercises are run: every starter must fail its checker, every
hidden solution pass it. The environment files must agree with pyproject.toml. The lesson.py tests cover
fast mode, data sources and how lessons 05-07 find a trained model.
"""

from __future__ import annotations

import ast
import json
import re
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from ddim_tutorial import DDIMConfig
from ddim_tutorial.teaching import lesson

REPO = Path(__file__).resolve().parents[2]
NOTEBOOKS = REPO / "notebooks"
LESSONS = ["01_diffusion_schedule", "02_forward_noising", "03_unet", "04_training", "05_kid", "06_sampling",
           "07_interpolation", "08_guidance", "09_flow_matching"]
ALL_NOTEBOOKS = ["00_check_on_colab", *LESSONS]
COLAB_URL = "https://colab.research.google.com/github/ddim-tutorial/ddim-tutorial/blob/main/notebooks/{}.ipynb"
INSTALL = 'pip install -q "ddim-tutorial @ git+https://github.com/ddim-tutorial/ddim-tutorial"'


def load(name: str) -> dict:
    return json.loads((NOTEBOOKS / f"{name}.ipynb").read_text(encoding="utf-8"))


def cells(name: str, kind: str) -> list[str]:
    return ["".join(cell["source"]) for cell in load(name)["cells"] if cell["cell_type"] == kind]


def python_source(code: str) -> str:
    """Cell code with IPython's %magic and !shell lines replaced by pass, so that ast can parse it."""
    return "\n".join(re.sub(r"^(\s*)[%!].*$", r"\1pass", line) for line in code.splitlines())


# ------------------------------------------------------------------ the set
def test_the_series_is_complete_and_numbered():
    found = sorted(path.stem for path in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
    assert found == ALL_NOTEBOOKS


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_is_valid_and_stored_without_outputs(name):
    notebook = load(name)
    nbformat = pytest.importorskip("nbformat")
    nbformat.validate(nbformat.reads(json.dumps(notebook), as_version=4))
    for index, cell in enumerate(notebook["cells"]):
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [], f"{name} cell {index} has outputs: clear them before committing"
            assert cell["execution_count"] is None, f"{name} cell {index} has an execution count"
    assert notebook["metadata"]["kernelspec"]["name"] == "python3"


@pytest.mark.parametrize("name", ALL_NOTEBOOKS)
def test_notebook_opens_with_title_and_colab_badge(name):
    first = cells(name, "markdown")[0]
    assert first.startswith("# ")
    assert COLAB_URL.format(name) in first
    assert "colab-badge.svg" in first


# --------------------------------------------------------------- the lessons
@pytest.mark.parametrize("name", LESSONS)
def test_first_code_cell_installs_on_colab_only_and_picks_the_backend(name):
    setup = cells(name, "code")[0]
    lines = setup.splitlines()
    guard = next(i for i, line in enumerate(lines)
                 if line.startswith("if ") and '"google.colab" in sys.modules' in line)
    install = next(i for i, line in enumerate(lines) if INSTALL in line)
    assert install > guard and lines[install].startswith("    "), "the install must sit inside the google.colab guard"
    assert 'os.environ.setdefault("KERAS_BACKEND", "tensorflow")' in setup
    tree = ast.parse(python_source(setup))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import)
                for alias in node.names}
    imported |= {(node.module or "").split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert "keras" not in imported and "tensorflow" not in imported, (
        "the first cell must not import keras: the backend is chosen there")


def test_the_setup_cell_can_import_lesson_before_choosing_the_backend():
    import subprocess

    code = "import sys, ddim_tutorial.teaching.lesson; assert 'keras' not in sys.modules, sorted(sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_has_goals_exercise_with_hidden_solution_and_recap(name):
    markdown = cells(name, "markdown")
    goals = next((text for text in markdown if "**What you will learn**" in text), None)
    assert goals is not None and re.search(r"^- ", goals.split("**What you will learn**")[1], flags=re.M)
    exercises = [text for text in markdown if "**Exercise" in text]
    assert exercises, f"{name} has no exercise"
    solutions = [text for text in markdown if "<details>" in text]
    assert solutions and all("<summary>Solution</summary>" in text and "</details>" in text for text in solutions)
    assert any(text.startswith("## Recap") for text in markdown)


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_uses_the_package_and_defines_none_of_its_code(name):
    package_names = set()
    for module in (REPO / "ddim_tutorial").rglob("*.py"):
        for node in ast.walk(ast.parse(module.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                package_names.add(node.name)
    assert {"diffusion_schedule", "build_network", "reverse_diffusion"} <= package_names

    defined, starters, imports_package = [], [], False
    for code in cells(name, "code"):
        tree = ast.parse(python_source(code))
        checked = set(re.findall(r"lesson\.check\((my_\w+)", code))  # a write-it-yourself starter
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                (starters if node.name in checked else defined).append(node.name)
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("ddim_tutorial"):
                imports_package = True
    assert imports_package
    clashes = sorted(set(defined + starters) & package_names)
    assert not clashes, f"{name} re-defines package code: {clashes}; import it from ddim_tutorial instead"
    assert not defined, (f"{name} defines {defined}: lessons should import helpers, not define them (only an "
                         "exercise's my_... starter, checked in its own cell by lesson.check, may)")


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_never_names_the_test_data_folder_or_absolute_paths(name):
    for code in cells(name, "code"):
        assert "shared/data" not in code and "/work/" not in code and "/tmp/" not in code


@pytest.mark.parametrize("name", LESSONS[:-1])
def test_lesson_links_to_the_next_one(name):
    following = LESSONS[LESSONS.index(name) + 1]
    assert any(f"]({following}.ipynb)" in text for text in cells(name, "markdown"))


@pytest.mark.parametrize("name", ["05_kid", "06_sampling", "07_interpolation"])
def test_late_lessons_load_a_checkpoint_or_train_a_quick_model(name):
    code = "\n".join(cells(name, "code"))
    assert "CHECKPOINT = None" in code and "lesson.get_trained_model(CHECKPOINT)" in code


@pytest.mark.parametrize("name", ["01_diffusion_schedule", "02_forward_noising", "06_sampling", "07_interpolation",
                                  "08_guidance", "09_flow_matching"])
def test_explorer_lessons_show_a_widget_and_a_static_figure(name):
    code = "\n".join(cells(name, "code"))
    assert "widgets." in code and "_explorer(" in code
    assert re.search(r"\w+\.figure$", code, flags=re.M) or "plotting.plot_schedules" in code


def test_check_notebook_runs_the_suite_and_is_not_collected_by_pytest():
    code = "\n".join(cells("00_check_on_colab", "code"))
    assert "--nbval-lax" in code and "google.colab" in code
    namespace: dict = {}
    exec((NOTEBOOKS / "conftest.py").read_text(encoding="utf-8"), namespace)
    assert "00_check_on_colab.ipynb" in namespace["collect_ignore"]


def test_lessons_readme_lists_every_lesson_with_its_badge():
    readme = (NOTEBOOKS / "README.md").read_text(encoding="utf-8")
    for name in ALL_NOTEBOOKS:
        assert f"({name}.ipynb)" in readme and COLAB_URL.format(name) in readme


def test_nbval_sanitize_rules_compile_and_blank_what_varies():
    plugin = pytest.importorskip("nbval.plugin")
    text = (NOTEBOOKS / "nbval_sanitize.cfg").read_text(encoding="utf-8")
    rules = plugin.get_sanitize_patterns(text)  # exactly how nbval reads the file
    assert len(rules) == text.count("\n[") >= 5, "a rule is malformed: nbval would silently skip it"

    def sanitize(value: str) -> str:
        for regex, replacement in rules:  # nbval applies them in order, with re.sub and no flags
            value = re.sub(regex, replacement, value)
        return value

    assert sanitize("<Figure at 0x7f521b149870>") == "<Figure at 0xADDRESS>"
    assert sanitize("trained 2 epochs in 45 s") == "trained 2 epochs in DURATION"
    assert "PROGRESS-BAR" in sanitize("45/45 ━━━━━━━━━━━━━━━━━━━━ 12s 266ms/step - n_loss: 0.3164")
    assert sanitize("saved_at 2024-11-22T10:11:12") == "saved_at TIMESTAMP"
    log = "ok\nI0000 00:00:1795822429.493042   14222 cudart_stub.cc:31] Could not find cuda drivers\nend"
    assert sanitize(log) == "ok\nTF-LOG\nend"
    assert sanitize("\x1b[1m45/45\x1b[0m") != "\x1b[1m45/45\x1b[0m"
    assert sanitize("6 steps, 48 images") == "6 steps, 48 images"


# ------------------------------------------- write it yourself, with a checker (issue 12)
#: The core pieces each lesson has students write, by the starter's function name and the checker's exercise.
WRITE_IT_YOURSELF = {
    "01_diffusion_schedule": {"my_diffusion_schedule": "schedule"},
    "02_forward_noising": {"my_forward_noise": "forward_noise"},
    "03_unet": {"my_sinusoidal_embedding": "sinusoidal_embedding", "my_residual_block": "residual_block"},
    "04_training": {"my_noise_loss": "loss"},
    "05_kid": {"my_unbiased_mmd": "kid"},
    "07_interpolation": {"my_slerp": "slerp"},
    "08_guidance": {"my_guided_prediction": "guidance"},
    "09_flow_matching": {"my_flow_step": "flow_step"},
}


def exercise_cells(name: str) -> list[tuple[int, str]]:
    """(cell index, function) of every code cell that hands a my_... function to lesson.check."""
    return [(index, function) for index, cell in enumerate(load(name)["cells"]) if cell["cell_type"] == "code"
            for function in re.findall(r"lesson\.check\((my_\w+)", "".join(cell["source"]))]


#: Every checked exercise of the series, lesson 06's included when it has one.
CHECKED_EXERCISES = [(name, function) for name in LESSONS for _, function in exercise_cells(name)]


def exercise(name: str, function: str) -> dict[str, str]:
    """The cells of one exercise: the task before the starter, the starter, the hidden solution's code, and
    the sources of the three cells after the solution."""
    notebook = [("".join(cell["source"]), cell["cell_type"]) for cell in load(name)["cells"]]
    index = next(i for i, f in exercise_cells(name) if f == function)
    solution = notebook[index + 1][0] if index + 1 < len(notebook) else ""
    assert notebook[index + 1][1] == "markdown" and "<summary>Solution</summary>" in solution, (
        f"{name}: the cell after the {function} starter must hide its solution in <details>")
    blocks = re.findall(r"```python\n(.*?)```", solution, flags=re.S)
    assert len(blocks) == 1, f"{name}: the {function} solution must be one python block, a cell one can paste"
    return {"task": notebook[index - 1][0], "starter": notebook[index][0], "solution": blocks[0],
            "after": [text for text, _ in notebook[index + 2:index + 5]]}


def run_exercise_cell(code: str) -> list:
    """Run a cell as the notebook would, with a lesson.check that records what it returns."""
    results: list = []

    def check(function, name=None):
        results.append(lesson.check(function, name))
        return results[-1]

    exec(compile(code, "<exercise cell>", "exec"), {"lesson": SimpleNamespace(check=check), "__name__": "cell"})
    return results


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_has_write_it_yourself_exercises_checked_by_lesson_check(name):
    found = [function for _, function in exercise_cells(name)]
    missing = sorted(set(WRITE_IT_YOURSELF.get(name, {})) - set(found))
    assert not missing, f"{name} lacks the write-it-yourself exercise(s) {missing} (a starter that calls lesson.check)"
    for function in found:
        cells_of = exercise(name, function)
        task, starter = cells_of["task"], cells_of["starter"]
        assert "**Exercise" in task and f"`{function}(" in task and "NotImplementedError" in task, (
            f"{name}: the markdown before the {function} starter states the exercise, its signature and "
            "what to replace")
        definition = next(node for node in ast.parse(starter).body if isinstance(node, ast.FunctionDef))
        last = definition.body[-1]
        assert definition.name == function and isinstance(last, ast.Raise)
        assert "NotImplementedError" in ast.unparse(last)
        assert "# Your code here" in starter and re.search(rf"^lesson\.check\({function}\);$", starter, flags=re.M)
        assert any("lesson.show_source(" in text for text in cells_of["after"]), (
            f"{name}: after the {function} solution, show the package's own code with lesson.show_source")


@pytest.mark.parametrize("name, function", CHECKED_EXERCISES)
def test_starter_does_not_pass_and_says_what_to_replace(name, function):
    results = run_exercise_cell(exercise(name, function)["starter"])
    assert len(results) == 1 and not results[0], f"{name}: the {function} starter must leave work to do"
    assert results[0].message.endswith("NotImplementedError: replace that line with your code."), results[0].message
    expected = WRITE_IT_YOURSELF.get(name, {}).get(function)
    assert expected in (None, results[0].exercise)


@pytest.mark.parametrize("name, function", CHECKED_EXERCISES)
def test_hidden_solution_passes_its_checker(name, function):
    results = run_exercise_cell(exercise(name, function)["solution"])
    assert len(results) == 1, f"{name}: the {function} solution must end with its lesson.check line"
    assert results[0], f"{name}: the hidden solution fails its own checker: {results[0].message}"
    assert WRITE_IT_YOURSELF.get(name, {}).get(function) in (None, results[0].exercise)


def test_show_source_prints_the_package_code_and_nothing_else(capsys):
    import inspect

    from ddim_tutorial.core.model import DiffusionModel
    from ddim_tutorial.core.schedule import diffusion_schedule, path_parameters

    lesson.show_source(path_parameters, diffusion_schedule)
    out = capsys.readouterr().out
    assert "# diffusion_schedule, from ddim_tutorial/core/schedule.py (lines " in out
    assert inspect.getsource(diffusion_schedule).strip() in out and inspect.getsource(path_parameters).strip() in out
    lesson.show_source(DiffusionModel.compute_loss, only="_loss = ops.mean(")
    lines = capsys.readouterr().out.splitlines()
    assert "an excerpt" in lines[0] and lines[1].startswith("def compute_loss(") and lines[2].strip() == "..."
    assert all("_loss = ops.mean(" in line or line.strip() == "..." for line in lines[2:])
    with pytest.raises(ValueError, match="no line of DiffusionModel.compute_loss contains"):
        lesson.show_source(DiffusionModel.compute_loss, only="no such line")
    with pytest.raises(ValueError, match="not part of ddim_tutorial"):
        lesson.show_source(np.mean)


# ----------------------------------------------------- environment files
def requirement_floors(lines) -> dict[str, str]:
    from packaging.requirements import Requirement

    floors = {}
    for line in lines:
        requirement = Requirement(line)
        floors[requirement.name.lower().replace("_", "-")] = str(requirement.specifier)
    return floors


def pyproject() -> dict:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover
        tomllib = pytest.importorskip("tomli")
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]


def conda_file(path: Path) -> tuple[list[str], list[str]]:
    """(conda dependencies, pip dependencies) of a simple environment.yml."""
    conda, pip, in_pip = [], [], False
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#")[0].rstrip()
        if not line.strip():
            continue
        item = re.match(r"^(\s*)- (.+)$", line)
        if line.strip() == "- pip:":
            in_pip = True
        elif item and in_pip and len(item.group(1)) > 2:
            pip.append(item.group(2).strip())
        elif item:
            in_pip = False
            conda.append(item.group(2).strip())
    return conda, pip


@pytest.mark.parametrize("path", ["environment.yml", "binder/environment.yml"])
def test_environment_files_match_pyproject(path):
    project = pyproject()
    required = requirement_floors(project["dependencies"])
    allowed_extras = requirement_floors(project["optional-dependencies"]["test"])
    conda, pip = conda_file(REPO / path)
    listed = requirement_floors(pip)
    missing = {name: floor for name, floor in required.items() if listed.get(name) != floor}
    assert not missing, f"{path} lacks or changes the floors of {missing} (pyproject.toml: {required})"
    extra = {name: floor for name, floor in listed.items() if name not in required}
    assert all(allowed_extras.get(name) == floor for name, floor in extra.items()), (
        f"{path} lists {extra} beyond pyproject's dependencies and test extras")
    assert any(item.startswith("python") for item in conda) and "pip" in conda
    assert "conda-forge" in (REPO / path).read_text(encoding="utf-8")


def test_binder_installs_the_package_and_runs_fast_mode():
    post_build = (REPO / "binder" / "postBuild").read_text(encoding="utf-8")
    assert re.search(r"pip install .*(-e \.|\s\.)\s*$", post_build, flags=re.M)
    start = (REPO / "binder" / "start").read_text(encoding="utf-8")
    assert "DDIM_FAST" in start and 'exec "$@"' in start
    for script in ("postBuild", "start"):
        assert (REPO / "binder" / script).stat().st_mode & 0o111, f"binder/{script} must be executable"


# ------------------------------------------------------------ lesson.py
@pytest.fixture
def clean_env(monkeypatch):
    for name in (lesson.FAST_ENV_VAR, lesson.DATA_ENV_VAR, lesson.CHECKPOINT_ENV_VAR):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


@pytest.mark.parametrize("value, fast", [("1", True), ("true", True), ("0", False), ("", False), ("no", False)])
def test_fast_mode_reads_the_environment(clean_env, value, fast):
    clean_env.setenv(lesson.FAST_ENV_VAR, value)
    assert lesson.fast_mode() is fast
    assert lesson.pick(fast="small", full="big") == ("small" if fast else "big")


def test_fast_mode_rejects_unclear_values(clean_env):
    clean_env.setenv(lesson.FAST_ENV_VAR, "maybe")
    with pytest.raises(ValueError, match="DDIM_FAST"):
        lesson.fast_mode()


def test_lesson_config_and_data_source_follow_the_mode(clean_env, tmp_path):
    assert lesson.lesson_config() == DDIMConfig.preset("workshop")
    assert lesson.data_source() == "auto" and lesson.run_dir() == Path("runs") / "lessons"
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    assert lesson.lesson_config() == DDIMConfig.preset("smoke", ema=lesson.FAST_EMA)
    assert lesson.lesson_config(ema=0.5).ema == 0.5
    assert lesson.data_source() == "synthetic" and lesson.run_dir() == Path("runs") / "lessons-fast"
    clean_env.setenv(lesson.DATA_ENV_VAR, str(tmp_path))
    assert lesson.data_source() == "folder" and lesson.data_dir() == str(tmp_path)
    text = lesson.describe()
    assert "fast" in text and str(tmp_path) in text


def test_load_images_offline_and_from_a_folder(clean_env, flowers12_dir):
    clean_env.setenv(lesson.FAST_ENV_VAR, "1")
    images = lesson.load_images(3, 16, seed=1)
    assert images.shape == (3, 16, 16, 3) and 0.0 <= images.min() and images.max() <= 1.0
    assert not np.allclose(images, lesson.load_images(3, 16, split="validation", seed=1))
    clean_env.setenv(lesson.DATA_ENV_VAR, str(flowers12_dir))
    photos = lesson.load_images(4, 32, split="validation")
    assert photos.shape == (4, 32, 32, 3)
    with pytest.raises(ValueError, match="num_images"):
        lesson.load_images(0)


def test_choose_backend_keeps_the_running_backend_and_refuses_a_late_switch(monkeypatch):
    import keras

    active = keras.backend.backend()
    monkeypatch.setenv("KERAS_BACKEND", active)
    assert lesson.choose_backend() == active
    other = "jax" if active != "jax" else "torch"
    monkeypatch.setenv("KERAS_BACKEND", other)
    with pytest.raises(RuntimeError, match="restart the kernel"):
        lesson.choose_backend()
    with pytest.raises(ValueError, match="default"):
        lesson.choose_backend("theano")


@pytest.fixture(scope="module")
def smoke_checkpoint(tmp_path_factory):
    from ddim_tutorial import DiffusionModel, save_checkpoint
    from ddim_tutorial.data.synthetic import synthetic_flowers

    model = DiffusionModel(DDIMConfig.preset("smoke"))
    model.adapt_normalizer(synthetic_flowers(16, 32))
    return save_checkpoint(model, tmp_path_factory.mktemp("checkpoints") / "smoke")


def test_get_trained_model_prefers_the_given_checkpoint_then_the_environment(clean_env, smoke_checkpoint, tmp_path):
    clean_env.setattr(lesson, "train_lesson_model", lambda *a, **k: pytest.fail("must not train"))
    model = lesson.get_trained_model(smoke_checkpoint, verbose=False)
    assert model.config == DDIMConfig.preset("smoke") and model.is_adapted
    clean_env.setenv(lesson.CHECKPOINT_ENV_VAR, str(smoke_checkpoint))
    assert lesson.get_trained_model(verbose=False).config.image_size == 32
    from ddim_tutorial.training.checkpoints import CheckpointError

    clean_env.setenv(lesson.CHECKPOINT_ENV_VAR, str(tmp_path / "missing"))
    with pytest.raises(CheckpointError, match="does not exist"):
        lesson.get_trained_model(verbose=False)


# ------------------------------------------------- sources, and the sentences issue 11 corrected
def markdown_text(name: str) -> str:
    """All markdown of a notebook with every run of white space folded, so phrases match across lines."""
    return re.sub(r"\s+", " ", "\n".join(cells(name, "markdown")))


CORE_SOURCES = {
    "https://keras.io/examples/generative/ddim/": "the Keras DDIM example",
    "https://arxiv.org/abs/2010.02502": "the DDIM paper",
    "https://arxiv.org/abs/2006.11239": "the DDPM paper",
    "https://arxiv.org/abs/1801.01401": "the KID paper (Demystifying MMD GANs)",
}
KERAS_OPS = "https://keras.io/api/ops/"
KERAS_RANDOM = "https://keras.io/api/random/"
KERAS_MODEL = "https://keras.io/api/models/model/"
IPYWIDGETS = "https://ipywidgets.readthedocs.io/"
#: The pages each lesson must link besides CORE_SOURCES: the Keras 3 API it uses, and its own papers.
LESSON_SOURCES = {
    "01_diffusion_schedule": {KERAS_OPS, IPYWIDGETS, "https://arxiv.org/abs/2102.09672"},
    "02_forward_noising": {KERAS_OPS, IPYWIDGETS, "https://keras.io/api/layers/preprocessing_layers/numerical/normalization/",
                           "https://www.tensorflow.org/api_docs/python/tf/data/Dataset"},
    "03_unet": {KERAS_OPS, KERAS_RANDOM, KERAS_MODEL, "https://keras.io/api/layers/base_layer/",
                "https://keras.io/api/layers/convolution_layers/convolution2d/",
                "https://keras.io/api/layers/normalization_layers/batch_normalization/",
                "https://keras.io/api/layers/pooling_layers/average_pooling2d/",
                "https://keras.io/api/layers/reshaping_layers/up_sampling2d/",
                "https://keras.io/api/layers/merging_layers/concatenate/", "https://keras.io/api/layers/merging_layers/add/",
                "https://arxiv.org/abs/1505.04597"},
    "04_training": {KERAS_OPS, KERAS_RANDOM, "https://keras.io/api/models/model_training_apis/",
                    "https://keras.io/api/optimizers/adamw/", "https://keras.io/api/losses/regression_losses/",
                    "https://keras.io/api/callbacks/"},
    "05_kid": {KERAS_OPS, "https://keras.io/api/applications/inceptionv3/", "https://keras.io/api/metrics/base_metric/",
               "https://keras.io/api/layers/preprocessing_layers/image_preprocessing/resizing/"},
    "06_sampling": {KERAS_OPS, KERAS_RANDOM, KERAS_MODEL, IPYWIDGETS},
    "07_interpolation": {KERAS_OPS, KERAS_RANDOM, IPYWIDGETS},
    "08_guidance": {KERAS_OPS, IPYWIDGETS, "https://keras.io/api/layers/core_layers/embedding/",
                    "https://arxiv.org/abs/2207.12598"},
    "09_flow_matching": {KERAS_OPS, "https://arxiv.org/abs/2210.02747", "https://arxiv.org/abs/2209.03003",
                         "https://diffusionflow.github.io/",
                         "https://github.com/keras-team/keras-hub/blob/master/keras_hub/src/models/"
                         "stable_diffusion_3/flow_match_euler_discrete_scheduler.py"},
}


def sources_links(name: str) -> list[str]:
    sections = [text for text in cells(name, "markdown") if text.startswith("## Sources")]
    assert len(sections) == 1, f"{name} needs exactly one markdown cell that starts with '## Sources'"
    assert cells(name, "markdown")[-1] == sections[0], f"{name}: the Sources cell belongs at the end"
    return re.findall(r"\]\(([^)\s]+)\)", sections[0])


@pytest.mark.parametrize("name", LESSONS)
def test_lesson_ends_with_sources_linking_the_papers_and_the_keras_pages_it_uses(name):
    links = sources_links(name)
    assert links and all(link.startswith("https://") for link in links), links
    missing = [label for url, label in CORE_SOURCES.items() if url not in links]
    assert not missing, f"{name}'s Sources lack {missing}"
    missing = sorted(url for url in LESSON_SOURCES[name] if not any(link.startswith(url) for link in links))
    assert not missing, f"{name}'s Sources lack {missing}"


@pytest.mark.parametrize("name", LESSONS)
def test_sources_follow_what_the_lesson_code_uses(name):
    links = sources_links(name)
    code = "\n".join(cells(name, "code"))
    needed = {IPYWIDGETS: "widgets." in code, KERAS_OPS: "from keras import ops" in code,
              KERAS_RANDOM: "keras.random." in code, KERAS_MODEL: "keras.Model(" in code}
    missing = sorted(url for url, used in needed.items() if used and not any(link.startswith(url) for link in links))
    assert not missing, f"{name} uses these APIs in its code but does not link {missing}"


#: Sentences the review quoted as wrong (issue 11); they must not come back.
WRONG_SENTENCES = [
    ("01_diffusion_schedule", "Near the two ends of the arc the cosine (and the sine) change slowly"),
    ("01_diffusion_schedule", 'the schedule spends a fair share of its time near "almost clean" and "almost noise"'),
    ("02_forward_noising", "only a faint colour cast survives, the 2 % of signal that `min_signal_rate` leaves in"),
    ("05_kid", "It is zero exactly when the two distributions are the same"),
    ("05_kid", "which is why the Keras example measures KID with only 5 steps during training"),
    ("06_sampling", "it is what makes lesson 7's smooth interpolation impossible"),
    ("06_sampling", "so other values also ask it about noise levels it never saw"),
]
#: What the corrected cells say instead.
CORRECTED_FACTS = [
    ("01_diffusion_schedule", r"signal rate is a cosine, which falls fastest .{0,80}`t = 1`"),
    ("01_diffusion_schedule", r"noise rate is a sine, which grows fastest .{0,80}`t = 0`"),
    ("01_diffusion_schedule", r"What does slow down towards the ends are the \*variances\*"),
    ("02_forward_noising", r"−34 dB"),
    ("02_forward_noising", r"`noisy · std \+ mean`.{0,120}per-channel `mean`.{0,80}the same for every flower"),
    ("05_kid", r"up to order three"),
    ("05_kid", r"5 steps for the KID it reports during training are a matter of cost"),
    ("06_sampling", r"every image of a batch draws \*its own\* fresh noise"),
    ("06_sampling", r"0\.2 lies well inside that range"),
]


@pytest.mark.parametrize("name, sentence", WRONG_SENTENCES)
def test_sentences_corrected_by_issue_11_are_gone(name, sentence):
    assert sentence not in markdown_text(name)


@pytest.mark.parametrize("name, pattern", CORRECTED_FACTS)
def test_lessons_state_the_corrected_facts(name, pattern):
    assert re.search(pattern, markdown_text(name)), f"{name} should say: {pattern}"
