"""VOSI documents: well-formed XML in the VOSI namespaces, saying what they must."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from starling.vo.vosi import availability_xml, capabilities_xml

AVAILABILITY = "{http://www.ivoa.net/xml/VOSIAvailability/v1.0}"
CAPABILITIES = "{http://www.ivoa.net/xml/VOSICapabilities/v1.0}"


def test_availability_states_whether_and_since_when_with_the_note_escaped() -> None:
    root = ET.fromstring(availability_xml(False, 0.0, "filter: <paused> & draining"))
    assert root.tag == f"{AVAILABILITY}availability"
    assert root.findtext(f"{AVAILABILITY}available") == "false"
    assert root.findtext(f"{AVAILABILITY}upSince") == "1970-01-01T00:00:00Z"
    assert root.findtext(f"{AVAILABILITY}note") == "filter: <paused> & draining"


def test_capabilities_list_both_vosi_resources_at_the_service_base_url() -> None:
    root = ET.fromstring(capabilities_xml("http://127.0.0.1:8765"))
    assert root.tag == f"{CAPABILITIES}capabilities"
    found = {
        capability.get("standardID"): capability.findtext("interface/accessURL")
        for capability in root.findall("capability")
    }
    assert found == {
        "ivo://ivoa.net/std/VOSI#capabilities": "http://127.0.0.1:8765/capabilities",
        "ivo://ivoa.net/std/VOSI#availability": "http://127.0.0.1:8765/availability",
    }
