"""The AMFL Gradio app (Hugging Face Space entry point): ``python app.py``.

The model comes from ``AMFL_MODEL`` (a local folder or a Hub id), else the bundled folder
``space/model/`` beside this file; the examples are the files in ``space/examples/``. The
same layout holds in a Space assembled by ``python -m amfl.space assemble``. See
``amfl/demo.py`` for the page and ``space/README.md`` for the Space.
"""

from pathlib import Path

from amfl.demo import main

#: The Space's own folder: its bundled model and examples.
SPACE_DIR = Path(__file__).resolve().parent / "space"

if __name__ == "__main__":
    main(default_model=SPACE_DIR / "model", examples_dir=SPACE_DIR / "examples")
