"""The alert model and the survey codecs (ZTF, Rubin)."""

from starling.alert.decoder import AlertDecoder, encode_wire
from starling.alert.model import Alert, Cutout, Detection, ForcedPoint, History, UpperLimit

__all__ = [
    "Alert",
    "AlertDecoder",
    "Cutout",
    "Detection",
    "ForcedPoint",
    "History",
    "UpperLimit",
    "encode_wire",
]
