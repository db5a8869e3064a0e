"""The featscope command line with the search's device choices set from outside: the GPU
check's whole-job variants, each a fresh process as a user runs it.

    python bench/job_variant.py [--cudnn-benchmark on|off] [--channels-last on|off] -- ARGS

runs ``featscope ARGS`` with ``engine.model``'s ``cudnn_benchmark_helps`` and
``channels_last_helps`` answering as told (left as featscope decides where not given), so the
whole job can be timed under each choice before one becomes the default.
"""

from __future__ import annotations

import argparse
import sys

from featscope.engine import model as search_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cudnn-benchmark", choices=["on", "off"])
    parser.add_argument("--channels-last", choices=["on", "off"])
    parser.add_argument("args", nargs=argparse.REMAINDER,
                        help="featscope's arguments, after --")
    options = parser.parse_args()
    if options.cudnn_benchmark:
        chosen = options.cudnn_benchmark == "on"
        search_model.cudnn_benchmark_helps = lambda device: chosen
    if options.channels_last:
        last = options.channels_last == "on"
        search_model.channels_last_helps = lambda device, precision: last
    args = options.args[1:] if options.args[:1] == ["--"] else options.args
    sys.argv = ["featscope", *args]
    from featscope.cli import main as featscope
    featscope()


if __name__ == "__main__":
    main()
