"""The app's screens, by the name the nav bar and the number keys use."""

from .committee import CommitteeScreen
from .pipeline import PipelineScreen
from .results import ResultsScreen
from .runs import RunsScreen
from .setup import SetupScreen
from .training import TrainingScreen

SCREEN_TYPES = {
    "runs": RunsScreen,
    "setup": SetupScreen,
    "pipeline": PipelineScreen,
    "committee": CommitteeScreen,
    "training": TrainingScreen,
    "results": ResultsScreen,
}
