"""Compares the trained architectures: a leaderboard table and chart."""

from kedro.pipeline import Pipeline, node

from .nodes import build_leaderboard, plot_leaderboard


def create_pipeline(architectures: list[str]) -> Pipeline:
    return Pipeline(
        [
            node(
                build_leaderboard,
                [f"{architecture}_summary" for architecture in architectures],
                "leaderboard",
                name="build_leaderboard",
            ),
            node(plot_leaderboard, "leaderboard", "leaderboard_plot", name="plot_leaderboard"),
        ],
        tags="reporting",
    )
