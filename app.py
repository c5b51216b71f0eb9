"""Robust-R1 Studio as a Hugging Face Space (or `python app.py` anywhere).

Settings come from the environment (a Space's "Variables"):

    ROBUST_R1_STUDIO_DATASET   a dataset folder or Hub id opened in the Dataset tab
    ROBUST_R1_STUDIO_MODEL     a model folder, Hub id or 'tiny' (with an endpoint: the served name)
    ROBUST_R1_STUDIO_ENDPOINT  an OpenAI-compatible server URL instead of a local model
    ROBUST_R1_STUDIO_WORKDIR   the folder the studio writes to (default studio-output)
    GRADIO_SERVER_NAME / GRADIO_SERVER_PORT   set by the Space (default 127.0.0.1 / 7860+)

See docs/studio.md.
"""

from factory.studio.app import StudioConfig, build_app, main_from_env

config = StudioConfig.from_env()

if __name__ == "__main__":
    main_from_env()
else:  # imported (e.g. `gradio app.py` reload mode looks for `demo`)
    demo = build_app(config)
