"""A static, self-contained HTML gallery: index of layers -> a page per layer -> a page per unit.

The site opens from disk without a server and loads nothing from the network: styles and the
small keyboard script are inline, plots are inline SVG, and every image is a file in the
output folder referenced by a relative path. Layer pages are paginated and their thumbnails
load lazily, so that layers with thousands of units stay fast.

Layout of ``OUT``::

    index.html
    layers/LAYER[-pN].html          one page per PAGE_SIZE units
    units/LAYER/UNIT.html           visualization, curve, dataset examples, route check,
                                    settings, command
    thumbs/LAYER/UNIT.png           small copies for the layer grids
    examples/LAYER/UNIT-R[-crop].png   dataset examples (whole image and crop)
    cache/KEY/...                   the rendered images themselves (see ``cache``)
"""

from __future__ import annotations

import html
import json
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from ..analysis.examples import Example, crop
from ..analysis.routes import FLAG_BELOW, Route
from ..files.images import load_prepared
from ..files.writing import file_stems, save_png, write_text

PAGE_SIZE = 200  # units per layer page
THUMB = 112  # px, side of a thumbnail in a layer grid
EXAMPLE_THUMB = 96  # px, side of a dataset example
ANOTHER_ROUTE = "takes another route than its top natural images"  # a flagged unit
BADGE = "⚑ route"  # marks a flagged unit in its layer's grid


@dataclass(frozen=True)
class Measurement:
    """What was measured of a unit's visualization: its metrics by name
    (``featscope.analysis.report``; e.g. "robustness", "top1_64px"), its route (None: not
    checked) and the name of the classifier that judged it (None: none did)."""

    metrics: dict = field(default_factory=dict)
    route: Route | None = None
    judge: str | None = None


@dataclass
class UnitEntry:
    label: str  # what the unit is called in its layer: "17", or a class name
    target: str  # its target, e.g. "_blocks.8:17"
    image: Path  # its visualization
    objective: float  # the activation it reaches
    objective_initial: float  # at the start of the search
    history: list[float]  # the objective over the steps
    command: str  # shell command that reproduces the image exactly
    settings: dict = field(default_factory=dict)
    examples: list[Example] = field(default_factory=list)
    ratio: float | None = None  # activation over the best natural image's (when that is > 0)
    zero_gradient: bool = False
    objective_transformed: float | None = None  # under the search's random transforms
    measured: Measurement = field(default_factory=Measurement)

    @property
    def route(self) -> Route | None:
        """Its path against its top natural images' (the route check)."""
        return self.measured.route


@dataclass
class LayerEntry:
    name: str
    description: str  # e.g. "Conv2d, output (112, 14, 14)"
    units: list[UnitEntry]


STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:0 auto;max-width:1200px;padding:12px 20px;
color:#222;background:#fafafa}
a{color:#0645ad;text-decoration:none}a:hover{text-decoration:underline}
nav{display:flex;gap:14px;flex-wrap:wrap;margin:6px 0 14px;color:#666}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(116px,1fr));gap:6px}
.cell{background:#fff;border:1px solid #ddd;padding:2px;font-size:12px;text-align:center}
.cell img{width:100%;aspect-ratio:1;display:block;image-rendering:auto}
.strip{display:flex;gap:4px;overflow:hidden}.strip img{width:72px;height:72px}
.layer{margin:12px 0 22px}.main{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
.main>img{width:320px;height:320px;border:1px solid #ccc}
.examples{display:flex;gap:10px;flex-wrap:wrap}.example{font-size:12px;text-align:center}
.example img{width:96px;height:96px;display:block}
pre{background:#fff;border:1px solid #ddd;padding:8px;overflow:auto;font-size:12px}
pre.command{white-space:pre-wrap;word-break:break-all}
table{border-collapse:collapse}td,th{padding:1px 10px 1px 0;text-align:left}.muted{color:#777}
.flag{color:#b31d28;font-weight:bold}.cell.flagged{border-color:#d73a49}
.badge{display:inline-block;background:#d73a49;color:#fff;border-radius:3px;padding:0 3px;
font-size:11px;margin-left:3px}
"""

# Links carry data-keys="KEY ..."; the script follows the link whose key was pressed.
KEYS_SCRIPT = """
document.addEventListener('keydown', function (event) {
  if (event.altKey || event.ctrlKey || event.metaKey) return;
  var link = document.querySelector('a[data-keys~="' + CSS.escape(event.key) + '"]');
  if (link) { window.location.href = link.href; }
});
"""


def _page(title: str, body: str, refresh: int | None = None) -> str:
    reload = f"<meta http-equiv=\"refresh\" content=\"{int(refresh)}\">" if refresh else ""
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">{reload}"
            f"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(title)}</title><link rel=\"icon\" href=\"data:,\">"
            f"<style>{STYLE}</style></head>\n"
            f"<body>\n{body}\n<script>{KEYS_SCRIPT}</script></body></html>\n")


def _link(href: str, text: str, keys: str | None = None) -> str:
    data = f' data-keys="{keys}"' if keys else ""
    return f'<a href="{html.escape(href)}"{data}>{html.escape(text)}</a>'


def _img(src: str, alt: str, extra: str = "") -> str:
    return f'<img src="{html.escape(src)}" alt="{html.escape(alt)}"{extra}>'


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(text, path)


class Site:
    """Paths of every page and file, and the relative links between them."""

    def __init__(self, out: Path, layers: Sequence[LayerEntry]):
        self.out = out
        self.layers = list(layers)
        names = [layer.name for layer in layers]
        self.layer_stems = dict(zip(names, file_stems(name or "output" for name in names)))
        self.unit_stems = {layer.name: file_stems(u.label for u in layer.units)
                           for layer in layers}

    def layer_page(self, layer: str, page: int = 0) -> Path:
        suffix = f"-p{page + 1}" if page else ""
        return self.out / "layers" / f"{self.layer_stems[layer]}{suffix}.html"

    def pages(self, layer: LayerEntry) -> int:
        return max(1, -(-len(layer.units) // PAGE_SIZE))

    def unit_page(self, layer: str, index: int) -> Path:
        stem = self.unit_stems[layer][index]
        return self.out / "units" / self.layer_stems[layer] / f"{stem}.html"

    def thumb(self, layer: str, index: int) -> Path:
        stem = self.unit_stems[layer][index]
        return self.out / "thumbs" / self.layer_stems[layer] / f"{stem}.png"

    def example(self, layer: str, index: int, rank: int, kind: str) -> Path:
        stem = self.unit_stems[layer][index]
        return self.out / "examples" / self.layer_stems[layer] / f"{stem}-{rank}-{kind}.png"

    @staticmethod
    def rel(target: Path | str, page: Path) -> str:
        return Path(os.path.relpath(Path(target).resolve(), page.parent.resolve())).as_posix()


def write_gallery(out: str | Path, layers: Sequence[LayerEntry], *, title: str,
                  settings: dict, input_size: tuple[int, int] | None = None,
                  figures: Sequence[Path] = (), status: str | None = None,
                  refresh: int | None = None, written: set[str] | None = None) -> Path:
    """Write the site for ``layers`` into ``out``; returns the index page's path.

    ``input_size`` (H, W) is the size dataset examples were scored at (needed to cut their
    crops); ``figures`` are extra images shown on the index (e.g. the overview). A site that
    is still filling up (``featscope atlas``) shows ``status`` on its index, which reloads
    itself every ``refresh`` seconds, and is written again as units arrive: ``written``
    holds the units whose thumbnails and examples are already written (updated here), so
    that each rewrite writes only the new ones.
    """
    site = Site(Path(out), layers)
    for layer in site.layers:
        for i, unit in enumerate(layer.units):
            key = str(site.thumb(layer.name, i))
            if written is None or key not in written:
                _write_unit_files(site, layer, i, unit, input_size)
            if written is not None:
                written.add(key)
    for position, layer in enumerate(site.layers):
        for page in range(site.pages(layer)):
            _write(site.layer_page(layer.name, page), _layer_html(site, position, page, title))
        for i in range(len(layer.units)):
            _write(site.unit_page(layer.name, i), _unit_html(site, position, i, title))
    index = site.out / "index.html"
    _write(index, _index_html(site, title, settings, figures, status, refresh))
    return index


def _write_unit_files(site: Site, layer: LayerEntry, i: int, unit: UnitEntry,
                      input_size: tuple[int, int] | None) -> None:
    thumb = site.thumb(layer.name, i)
    thumb.parent.mkdir(parents=True, exist_ok=True)
    with Image.open(unit.image) as picture:
        save_png(picture.convert("RGB").resize((THUMB, THUMB), Image.Resampling.LANCZOS), thumb)
    if unit.examples:
        site.example(layer.name, i, 0, "image").parent.mkdir(parents=True, exist_ok=True)
    for rank, example in enumerate(unit.examples):
        whole = load_prepared(Path(example.path), input_size)
        save_png(whole.resize((EXAMPLE_THUMB, EXAMPLE_THUMB), Image.Resampling.LANCZOS),
                 site.example(layer.name, i, rank, "image"))
        save_png(crop(example, input_size).resize((EXAMPLE_THUMB, EXAMPLE_THUMB),
                                                  Image.Resampling.LANCZOS),
                 site.example(layer.name, i, rank, "crop"))


def _index_html(site: Site, title: str, settings: dict, figures: Sequence[Path],
                status: str | None = None, refresh: int | None = None) -> str:
    page = site.out / "index.html"
    parts = [f"<h1>{html.escape(title)}</h1>",
             "<p class=\"muted\">Click a layer, then a unit. Keys: ← → previous/next, "
             "↑ up one level, i index, 1–9 a layer.</p>"]
    if status:
        parts.append(f"<p class=\"status\"><b>{html.escape(status)}</b></p>")
    for figure in figures:
        parts.append("<p>" + _img(site.rel(figure, page), "overview", ' style="max-width:100%"')
                     + "</p>")
    for position, layer in enumerate(site.layers):
        first = site.rel(site.layer_page(layer.name), page)
        thumbs = "".join(_img(site.rel(site.thumb(layer.name, i), page), unit.label,
                              ' loading="lazy"') for i, unit in enumerate(layer.units[:12]))
        key = str(position + 1) if position < 9 else None
        parts.append(f'<div class="layer"><h2>{_link(first, layer.name or "output", key)} '
                     f'<span class="muted">{len(layer.units)} units · '
                     f'{html.escape(layer.description)}</span></h2>'
                     f'<a href="{html.escape(first)}"><div class="strip">{thumbs}</div></a></div>')
    parts.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(settings, indent=2)) + "</pre>")
    return _page(title, "\n".join(parts), refresh)


def _neighbour_layer_link(site: Site, position: int, step: int, page: Path, key: str) -> str:
    other = position + step
    if not 0 <= other < len(site.layers):
        return ""
    name = site.layers[other].name or "output"
    text = f"{'←' if step < 0 else '→'} layer {name}"
    return _link(site.rel(site.layer_page(site.layers[other].name), page), text, key)


def _layer_html(site: Site, position: int, number: int, title: str) -> str:
    layer = site.layers[position]
    page = site.layer_page(layer.name, number)
    index = site.out / "index.html"
    nav = [_link(site.rel(index, page), "↑ index", "ArrowUp i")]
    count = site.pages(layer)

    def page_link(n: int, text: str, keys: str | None = None) -> str:
        return _link(site.rel(site.layer_page(layer.name, n), page), text, keys)

    nav.append(page_link(number - 1, "← page", "ArrowLeft") if number > 0
               else _neighbour_layer_link(site, position, -1, page, "ArrowLeft"))
    nav.append(page_link(number + 1, "page →", "ArrowRight") if number + 1 < count
               else _neighbour_layer_link(site, position, 1, page, "ArrowRight"))
    pager = " ".join(f"<b>{n + 1}</b>" if n == number else page_link(n, str(n + 1))
                     for n in range(count)) if count > 1 else ""
    cells = []
    start = number * PAGE_SIZE
    for i in range(start, min(start + PAGE_SIZE, len(layer.units))):
        unit = layer.units[i]
        ratio = f" · {unit.ratio:.2g}×" if unit.ratio is not None else ""
        thumb = _img(site.rel(site.thumb(layer.name, i), page), f"unit {unit.label}",
                     f' loading="lazy" width="{THUMB}" height="{THUMB}"')
        href = html.escape(site.rel(site.unit_page(layer.name, i), page))
        flagged = unit.route is not None and unit.route.flagged
        badge = (f'<span class="badge" title="{ANOTHER_ROUTE} (agreement '
                 f'{unit.route.agreement:.2f})">{BADGE}</span>' if flagged else "")
        cells.append(f'<a class="cell{" flagged" if flagged else ""}" href="{href}">{thumb}'
                     f"{html.escape(unit.label)} · {unit.objective:.3g}{ratio}{badge}</a>")
    legend = "unit · activation reached" + (" · ratio to best image"
                                            if any(u.examples for u in layer.units) else "")
    body = (f"<nav>{' '.join(n for n in nav if n)}</nav>"
            f"<h1>{html.escape(layer.name or 'output')}</h1>"
            f"<p class=\"muted\">{html.escape(layer.description)} · {len(layer.units)} units · "
            f"label: {legend}</p>{_routes_line(layer)}{_judge_line(layer)}"
            f"<p>{pager}</p><div class=\"grid\">{''.join(cells)}</div><p>{pager}</p>")
    return _page(f"{layer.name} — {title}", body)


TRANSFER_VIEWS = (("full", "full size"), ("64px", "64 px"), ("48px", "48 px"))


def transfer_text(metrics: dict) -> str:
    """Where a judge ranks a class image's class, per view: "full size: top-1 · 64 px: top-5 ·
    48 px: missed" (missed: not among its first five)."""
    def rank(view: str) -> str:
        return "top-1" if metrics[f"top1_{view}"] else \
            "top-5" if metrics[f"top5_{view}"] else "missed"
    return " · ".join(f"{shown}: {rank(view)}" for view, shown in TRANSFER_VIEWS)


def _judge_line(layer: LayerEntry) -> str:
    """The layer page's line on how a judge classifies its class images ("" where none did)."""
    judged = [unit.measured for unit in layer.units
              if unit.measured.judge is not None and
              unit.measured.metrics.get("top1_full") is not None]
    if not judged:
        return ""
    counts = " · ".join(f"{shown} {sum(bool(m.metrics[f'top1_{view}']) for m in judged)}"
                        for view, shown in TRANSFER_VIEWS)
    return (f"<p>Judged by {html.escape(judged[0].judge)}, another classifier: its top-1 is the "
            f"class for {counts} of {len(judged)} images.</p>")


def _routes_line(layer: LayerEntry) -> str:
    """The layer page's line on the route check of its units ("" where none was checked)."""
    checked = [unit.route for unit in layer.units if unit.route is not None]
    if not checked:
        return ""
    flagged = sum(route.flagged for route in checked)
    if not flagged:
        return (f"<p>Route check: none of the {len(checked)} checked units flagged: no "
                "visualization takes another route than its unit's top natural images.</p>")
    return (f'<p>Route check: <span class="flag">{flagged} of {len(checked)} checked units '
            f'flagged</span> <span class="badge">{BADGE}</span>: their visualizations take '
            "another route through the network than their units' top natural images; distrust "
            "them.</p>")


def curve_svg(history: Sequence[float], reference: float | None = None, width: int = 480,
              height: int = 160) -> str:
    """An inline SVG line plot of the objective over steps (and a dashed reference level)."""
    values = list(history) + ([reference] if reference is not None else [])
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    pad = 28

    def xy(step: int, value: float) -> str:
        x = pad + (width - 2 * pad) * step / max(1, len(history) - 1)
        y = height - pad - (height - 2 * pad) * (value - low) / span
        return f"{x:.1f},{y:.1f}"

    line = " ".join(xy(i, v) for i, v in enumerate(history))
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'role="img" aria-label="objective over steps">',
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>',
             f'<polyline fill="none" stroke="#1f6feb" stroke-width="1.5" points="{line}"/>',
             f'<text x="{pad}" y="{height - 8}" font-size="11">step 1</text>',
             f'<text x="{width - pad}" y="{height - 8}" font-size="11" text-anchor="end">'
             f'step {len(history)}</text>',
             f'<text x="4" y="{pad - 8}" font-size="11">{high:.3g}</text>',
             f'<text x="4" y="{height - pad + 14}" font-size="11">{low:.3g}</text>']
    if reference is not None:
        y = xy(0, reference).split(",")[1]
        parts.append(f'<line x1="{pad}" x2="{width - pad}" y1="{y}" y2="{y}" stroke="#d73a49" '
                     'stroke-dasharray="4 3"/>')
        parts.append(f'<text x="{width - pad}" y="{float(y) - 4:.1f}" font-size="11" '
                     'text-anchor="end" fill="#d73a49">best natural image</text>')
    parts.append("</svg>")
    return "".join(parts)


ROUTE_SERIES = (  # (what, its colour, its dash) in a route's plot and table
    ("visualization", "#1f6feb", ""),
    ("top images", "#2da44e", "4 3"),
    ("unrelated", "#8c959f", "2 3"),
)


def _route_lines(route: Route) -> list[list[float]]:
    """The (L,) similarities of ``ROUTE_SERIES``, in its order."""
    return [route.visualization.tolist(), route.top.tolist(), route.unrelated.tolist()]


def route_svg(route: Route, width: int = 480, height: int = 170) -> str:
    """An inline SVG line plot of a route over its layers (low to high): the visualization's
    mean similarity to its unit's top natural images, the top images' to each other (the same
    route) and unrelated images' to them (another route); the layers that ``agreement``
    averages over are shaded."""
    lines = _route_lines(route)
    count = len(route.layers)
    low = min(0.0, *(v for line in lines for v in line))
    high = max(1.0, *(v for line in lines for v in line))
    pad = 28

    def x(i: float) -> float:
        return pad + (width - 2 * pad) * (i / (count - 1) if count > 1 else 0.5)

    def y(value: float) -> float:
        return height - pad - (height - 2 * pad) * (value - low) / (high - low)

    shade = max(pad, x(count - route.near) - (width - 2 * pad) / max(1, count - 1) / 2)
    parts = [(f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
              'role="img" aria-label="similarity to the top natural images, layer by layer">'),
             f'<rect x="0" y="0" width="{width}" height="{height}" fill="#fff" stroke="#ddd"/>',
             (f'<rect x="{shade:.1f}" y="{pad}" width="{width - pad - shade:.1f}" '
              f'height="{height - 2 * pad}" fill="#f3f0e0"/>'),
             (f'<text x="{width - pad}" y="{pad + 12}" font-size="11" text-anchor="end" '
              'fill="#777">agreement</text>'),
             (f'<line x1="{pad}" x2="{width - pad}" y1="{y(0.0):.1f}" y2="{y(0.0):.1f}" '
              'stroke="#ccc"/>')]
    for n, ((what, colour, dash), line) in enumerate(zip(ROUTE_SERIES, lines)):
        style = f' stroke-dasharray="{dash}"' if dash else ""
        points = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in enumerate(line))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5"{style} '
                     f'points="{points}"/>')
        parts += [f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}"><title>'
                  f"{html.escape(name)}: {what} {v:.3f}</title></circle>"
                  for i, (name, v) in enumerate(zip(route.layers, line))]
        parts.append(f'<text x="{pad + 110 * n}" y="16" font-size="11" fill="{colour}">'
                     f"— {what}</text>")
    first, last = html.escape(route.layers[0]), html.escape(route.layers[-1])
    parts += [f'<text x="{pad}" y="{height - 8}" font-size="11">{first}</text>',
              f'<text x="4" y="{pad + 4}" font-size="11">{high:.2g}</text>',
              f'<text x="4" y="{height - pad + 4}" font-size="11">{low:.2g}</text>']
    if low < 0:
        parts.append(f'<text x="4" y="{y(0.0) + 4:.1f}" font-size="11">0</text>')
    if count > 1:
        parts.append(f'<text x="{width - pad}" y="{height - 8}" font-size="11" '
                     f'text-anchor="end">{last}</text>')
    parts.append("</svg>")
    return "".join(parts)


def _route_html(route: Route) -> str:
    """A unit page's route check: the verdict, the route's plot and its numbers per layer."""
    agreement = route.agreement
    if route.flagged:
        verdict = (f'<p class="flag">⚑ This visualization {ANOTHER_ROUTE}: agreement '
                   f"{agreement:.2f}, below {FLAG_BELOW:g}.</p>")
    elif math.isnan(agreement):
        verdict = ("<p>No verdict: near the unit, its top natural images are no more alike "
                   "than unrelated images are to them.</p>")
    else:
        verdict = (f"<p>Travels with its top natural images: agreement {agreement:.2f} "
                   f"(flagged below {FLAG_BELOW:g}).</p>")
    explain = ('<p class="muted">Layer by layer up to the unit (low to high), each image as its '
               "feature map averaged over positions: the visualization's mean similarity to "
               "the unit's top natural images, against how alike the top images are (the same "
               "route) and how alike unrelated images are to them (another route). The "
               "agreement places the visualization between the two (0: like unrelated images, "
               "1: like the top images) over the shaded layers nearest the unit.</p>")
    heads = "".join(f"<th>{what}</th>" for what, _, _ in ROUTE_SERIES)
    rows = "".join(
        f"<tr><td>{html.escape(name)}</td>"
        + "".join(f"<td>{v:.3f}</td>" for v in values)
        + f"<td>{'–' if math.isnan(score) else f'{score:.2f}'}</td></tr>"
        for name, *values, score in zip(route.layers, *_route_lines(route),
                                        route.score.tolist()))
    table = (f"<details><summary>Per layer</summary><table><tr><th>layer</th>{heads}"
             f"<th>score</th></tr>{rows}</table></details>")
    return f'<h2 id="route">Route check</h2>{verdict}{explain}{route_svg(route)}{table}'


def _unit_html(site: Site, position: int, i: int, title: str) -> str:
    layer = site.layers[position]
    unit = layer.units[i]
    page = site.unit_page(layer.name, i)
    up = site.layer_page(layer.name, i // PAGE_SIZE)
    nav = [_link(site.rel(site.out / "index.html", page), "index", "i"),
           _link(site.rel(up, page), f"↑ layer {layer.name or 'output'}", "ArrowUp")]
    if i > 0:
        nav.append(_link(site.rel(site.unit_page(layer.name, i - 1), page),
                         f"← {layer.units[i - 1].label}", "ArrowLeft"))
    if i + 1 < len(layer.units):
        nav.append(_link(site.rel(site.unit_page(layer.name, i + 1), page),
                         f"{layer.units[i + 1].label} →", "ArrowRight"))
    elif position + 1 < len(site.layers) and site.layers[position + 1].units:
        following = site.layers[position + 1]  # walk on into the next layer
        nav.append(_link(site.rel(site.unit_page(following.name, 0), page),
                         f"{following.name or 'output'} {following.units[0].label} →",
                         "ArrowRight"))
    best = unit.examples[0].activation if unit.examples else None
    facts = [("target", unit.target), ("activation reached", f"{unit.objective:.4g}"),
             ("at the start", f"{unit.objective_initial:.4g}")]
    if unit.objective_transformed is not None:
        facts.append(("under random transforms", f"{unit.objective_transformed:.4g}"))
    if best is not None:
        facts.append(("best natural image", f"{best:.4g}"))
    if unit.ratio is not None:
        facts.append(("ratio to best image", f"{unit.ratio:.3g}×"))
    if unit.route is not None:
        agreement = unit.route.agreement
        facts.append(("route agreement", "no verdict" if math.isnan(agreement) else
                      f"{agreement:.2f}" + (" (flagged)" if unit.route.flagged else "")))
    metrics = unit.measured.metrics
    if metrics.get("robustness") is not None:
        facts.append(("robustness", f"{metrics['robustness']:.2f} of the activation under small "
                                    "shifts, scales and rotations"))
    if unit.measured.judge is not None and metrics.get("top1_full") is not None:
        facts.append((f"judged by {unit.measured.judge}", transfer_text(metrics)))
    if unit.zero_gradient:
        facts.append(("warning", "the input gradient was zero at every step"))
    table = "".join(f"<tr><td class=\"muted\">{html.escape(k)}</td><td>{html.escape(v)}</td></tr>"
                    for k, v in facts)
    body = [f"<nav>{' '.join(nav)}</nav>",
            f"<h1>{html.escape(layer.name or 'output')} · {html.escape(unit.label)}</h1>"]
    if unit.route is not None and unit.route.flagged:
        body.append(f'<p class="flag">⚑ This visualization {ANOTHER_ROUTE}: distrust it '
                    '(<a href="#route">route check</a>).</p>')
    body += ['<div class="main">'
             + _img(site.rel(unit.image, page), f"visualization of {unit.target}")
             + f"<div><table>{table}</table><h3>Objective over steps</h3>"
             f"{curve_svg(unit.history, best)}</div></div>"]
    if unit.examples:
        cells = "".join(
            '<div class="example">'
            + _img(site.rel(site.example(layer.name, i, r, "image"), page), Path(e.path).name,
                   f' title="{html.escape(e.path)}"')
            + _img(site.rel(site.example(layer.name, i, r, "crop"), page),
                   f"crop of {Path(e.path).name}")
            + f"{e.activation:.3g}</div>" for r, e in enumerate(unit.examples))
        body.append("<h2>Dataset examples</h2><p class=\"muted\">The images that activate this "
                    "unit most (top), and the region around the strongest response (bottom)."
                    f"</p><div class=\"examples\">{cells}</div>")
    if unit.route is not None:
        body.append(_route_html(unit.route))
    body.append("<h2>Reproduce</h2><p class=\"muted\">Renders this unit again, alone: every "
                "unit has its own seed, so its image does not depend on the units it was "
                "batched with (on the CPU, up to float rounding).</p><pre class=\"command\">"
                + html.escape(unit.command) + "</pre>")
    body.append("<h2>Settings</h2><pre>" + html.escape(json.dumps(unit.settings, indent=2))
                + "</pre>")
    return _page(f"{layer.name} {unit.label} — {title}", "\n".join(body))
