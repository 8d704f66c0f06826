"""The `yard` command: registry commands here; other packages add theirs via entry points.

Platform commands (`yard up`, `yard api`, `yard worker`, `yard keys`) are registered through the
``modelyard.cli`` entry-point group, so the registry never imports the platform.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from . import evals, feedback, models, route, route_import, route_replay, suites
from .common import new_app
from .generate import generate

app = new_app("Modelyard: route every task to the cheapest adequate open-weight model.")
models.app.command("eval")(evals.eval_model)
route.app.command("import")(route_import.import_command)
route.app.command("replay")(route_replay.replay_command)
app.add_typer(models.app, name="models")
app.add_typer(route.app, name="route")
app.add_typer(suites.app, name="evals")
app.add_typer(feedback.app, name="feedback")
app.command()(generate)


def _load_plugins() -> None:
    for ep in entry_points(group="modelyard.cli"):
        try:
            register = ep.load()
        except ImportError:
            continue
        register(app)


_load_plugins()


def main() -> None:
    app(prog_name="yard")
