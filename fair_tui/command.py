"""`fair tui`: the UI registers its own command, so the engine's CLI never imports the UI layer."""

from pathlib import Path

from fair_core.hookspecs import hookimpl


def _configure(parser) -> None:
    parser.add_argument("target", nargs="?", help="a config file, a run directory, or a folder of runs")


def _run(args) -> int:
    if args.target and Path(args.target).is_file():  # a config the form cannot show is one line, exit 2
        from fair_core import config

        config.load(args.target)
    from .app import FairApp  # Textual loads only when the UI is asked for

    FairApp(args.target).run()
    return 0


@hookimpl
def register_commands(register):
    register("tui", "the terminal UI: set up, run, watch and browse FAIR runs", _configure, _run)
