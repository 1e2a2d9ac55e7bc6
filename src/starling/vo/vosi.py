"""IVOA VOSI 1.1 documents: availability and capabilities (https://www.ivoa.net/documents/VOSI/)."""

from __future__ import annotations

import time
from xml.sax.saxutils import escape

AVAILABILITY_NS = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
CAPABILITIES_NS = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VODATASERVICE_NS = "http://www.ivoa.net/xml/VODataService/v1.1"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"


def _iso(epoch_s: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch_s))


def availability_xml(available: bool, up_since: float, note: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:availability xmlns:vosi="{AVAILABILITY_NS}">\n'
        f"  <vosi:available>{'true' if available else 'false'}</vosi:available>\n"
        f"  <vosi:upSince>{_iso(up_since)}</vosi:upSince>\n"
        f"  <vosi:note>{escape(note)}</vosi:note>\n"
        "</vosi:availability>\n"
    )


# The ExecutionBroker working draft names no standardID yet: this one, in the IVOA's form, until it does.
EXECUTION_BROKER_ID = "ivo://ivoa.net/std/ExecutionBroker"


def capabilities_xml(base_url: str, more: tuple[tuple[str, str], ...] = ()) -> str:
    """The VOSI resources this service offers, and ``more`` (standardID, path), each with its access URL."""
    capabilities = [
        ("ivo://ivoa.net/std/VOSI#capabilities", "/capabilities"),
        ("ivo://ivoa.net/std/VOSI#availability", "/availability"),
        *more,
    ]
    body = "".join(
        f'  <capability standardID="{standard}">\n'
        f'    <interface xsi:type="vs:ParamHTTP" role="std">\n'
        f'      <accessURL use="full">{escape(base_url + path)}</accessURL>\n'
        "    </interface>\n"
        "  </capability>\n"
        for standard, path in capabilities
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<vosi:capabilities xmlns:vosi="{CAPABILITIES_NS}" xmlns:vs="{VODATASERVICE_NS}" '
        f'xmlns:xsi="{XSI_NS}">\n{body}</vosi:capabilities>\n'
    )
