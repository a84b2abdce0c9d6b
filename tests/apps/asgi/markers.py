# Markers for tests/asgi.rs: lines appended to files in the directory named
# in the file `marker_dir` beside this module.
import os

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "marker_dir")) as f:
    MARKERS = f.read().strip()


def mark(name, text):
    with open(os.path.join(MARKERS, name), "a") as f:
        f.write(text + "\n")
