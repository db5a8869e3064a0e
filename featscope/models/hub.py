"""The Hugging Face Hub without long waits offline: its local cache read in offline mode for
one call, and a single reachability check (one request, no retries, a short timeout) before a
download, instead of huggingface_hub's retries with backoff (about a minute offline).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

PROBE_TIMEOUT_S = 5.0
OFFLINE_VARIABLE = "HF_HUB_OFFLINE"


@contextmanager
def hub_offline() -> Iterator[None]:
    """huggingface_hub in offline mode inside the block, so that it reads its cache only and
    makes no request; its flag and the ``HF_HUB_OFFLINE`` variable are restored afterwards."""
    from huggingface_hub import constants

    flag, variable = constants.HF_HUB_OFFLINE, os.environ.get(OFFLINE_VARIABLE)
    constants.HF_HUB_OFFLINE = True
    os.environ[OFFLINE_VARIABLE] = "1"
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = flag
        if variable is None:
            os.environ.pop(OFFLINE_VARIABLE, None)
        else:
            os.environ[OFFLINE_VARIABLE] = variable


def hub_unreachable(repo_id: str, timeout: float = PROBE_TIMEOUT_S) -> str | None:
    """Why the Hub cannot serve the repository ``repo_id`` ("owner/name[@revision]") now, from
    one request without retries; None when it answers, whatever the HTTP status (a missing file
    or a gated repository is for the download itself to report)."""
    import huggingface_hub
    from huggingface_hub.errors import HfHubHTTPError

    if huggingface_hub.constants.HF_HUB_OFFLINE:
        return f"{OFFLINE_VARIABLE} is set"
    repo, _, revision = repo_id.partition("@")
    url = huggingface_hub.hf_hub_url(repo, "config.json", revision=revision or None)
    try:
        huggingface_hub.get_hf_file_metadata(url, timeout=timeout, retry_on_errors=False)
    except HfHubHTTPError:
        return None
    except Exception as error:  # no network, DNS, timeout, proxy: httpx and OS errors
        lines = str(error).strip().splitlines()
        return f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return None
