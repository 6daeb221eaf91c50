"""Charts for the report pages, drawn by pygal as inline SVG: no script (pygal's tooltips load one from a CDN,
so ``js=[]``), no XML declaration (the SVG sits inside the HTML), fixed sizes. pygal is imported when a chart is
drawn: ``missing`` says why the pages cannot be drawn where it is absent (an EMR image without it)."""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

WIDTH, HEIGHT = 880, 300


def missing() -> str:
    """Why charts cannot be drawn here ('' when they can)."""
    try:
        import pygal  # noqa: F401, PLC0415
    except ImportError as exc:
        return f"pygal is not installed ({exc}); pip install pygal (requirements.txt)"
    return ""


def _style(chart_class, title: str, **options):
    from pygal.style import CleanStyle  # noqa: PLC0415

    settings = {
        "title": title,
        "js": [],
        "disable_xml_declaration": True,
        "width": WIDTH,
        "height": HEIGHT,
        "style": CleanStyle(font_family="system-ui, sans-serif", background="white", plot_background="white"),
        "legend_at_bottom": True,
        "truncate_legend": 40,
    }
    return chart_class(**{**settings, **options})


def timeline(stages: Dict[str, float]) -> str:
    """The stages one after another in a single bar (seconds), in the order the run went through them."""
    import pygal  # noqa: PLC0415

    title = "Stages (seconds, in order)"
    chart = _style(pygal.HorizontalStackedBar, title, height=240, legend_at_bottom_columns=3, truncate_legend=32)
    chart.x_labels = ["run"]
    for name, seconds in stages.items():
        chart.add(name, [round(seconds, 2)])
    return chart.render(is_unicode=True)


def lines(title: str, labels: Sequence[str], series: Dict[str, List[Optional[float]]], percent: bool = False) -> str:
    """One line per series over the runs ``labels`` (oldest first); None: no value for that run."""
    import pygal  # noqa: PLC0415

    options = {"value_formatter": (lambda v: f"{v:.1%}")} if percent else {}
    chart = _style(pygal.Line, title, x_label_rotation=30, show_minor_x_labels=False, **options)
    chart.x_labels = list(labels)
    chart.x_labels_major_every = max(1, len(labels) // 10)
    for name, values in series.items():
        chart.add(name, list(values))
    return chart.render(is_unicode=True)


def stacked_bars(title: str, labels: Sequence[str], series: Dict[str, List[Optional[float]]]) -> str:
    """Stacked bars over the runs ``labels`` (oldest first), one colour per series."""
    import pygal  # noqa: PLC0415

    chart = _style(pygal.StackedBar, title, x_label_rotation=30, show_minor_x_labels=False)
    chart.x_labels = list(labels)
    chart.x_labels_major_every = max(1, len(labels) // 10)
    for name, values in series.items():
        chart.add(name, list(values))
    return chart.render(is_unicode=True)
