"""The AMFL Gradio app (Hugging Face Space entry point): ``python app.py``.

The model comes from ``AMFL_MODEL`` (a local folder or a Hub id), else ``space/model/``;
see ``amfl/demo.py`` for the page and ``space/README.md`` for the Space.
"""

from amfl.demo import main

if __name__ == "__main__":
    main()
