"""Sphinx configuration of the course website (myst-nb renders the lessons executed by site/build.py).

scripts/site.sh copies this file into build/site/src next to the executed notebooks and runs
sphinx-build there; nothing is executed by Sphinx itself.
"""

project = "DDIM, step by step, in Keras 3"
author = "the ddim-tutorial contributors"
html_title = "DDIM, step by step"

extensions = ["myst_nb"]
nb_execution_mode = "off"  # site/build.py executed the lessons already, with the bundled models
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3
# Lesson 00 shows its Colab-only shell lines (`!git clone ...`) unexecuted; Pygments cannot lex them as Python.
suppress_warnings = ["mystnb.unknown_mime_type", "misc.highlighting_failure"]
exclude_patterns = ["_build", "**/.ipynb_checkpoints"]

# MathJax from the site itself (scripts/site.sh copies it from npm), so the math renders offline too.
mathjax_path = "mathjax/tex-svg.js"

html_theme = "sphinx_book_theme"
html_static_path = ["_static"]
html_css_files = ["ddim-site.css"]
html_js_files = ["ddim-schedule.js", "ddim-sampler.js"]
html_theme_options = {
    "repository_url": "https://github.com/ddim-tutorial/ddim-tutorial",
    "use_repository_button": True,
    "show_toc_level": 2,
    "home_page_in_toc": True,
}
html_last_updated_fmt = None
