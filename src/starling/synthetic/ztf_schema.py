"""The ZTF alert schema 4.02, as the synthetic generator writes it.

No package on PyPI ships ZTF's schema, so its field list lives here in a compact form: ``name:type``
for a required field, ``name:?type`` for ``["null", type]`` with a null default, ``name:~type`` for
``["null", type]`` without a default. ``tests/synthetic/test_schemas.py`` checks it field by field
against ZTF's own ``.avsc`` files (in ``../shared/data/ztf/schema-4.02``), so it cannot drift.
"""

from __future__ import annotations

from typing import Any

ZTF_SCHEMA_VERSION = "4.02"

_CANDIDATE = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:long isdiffpos:string tblid:?long nid:?int rcid:?int field:?int xpos:?float "
    "ypos:?float ra:double dec:double magpsf:float sigmapsf:float chipsf:?float magap:?float "
    "sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float sharpnr:?float "
    "sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float magfromlim:?float "
    "seeratio:?float aimage:?float bimage:?float aimagerat:?float bimagerat:?float elong:?float "
    "nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float ssnamenr:?string sumrat:?float "
    "magapbig:?float sigmagapbig:?float ranr:double decnr:double sgmag1:?float srmag1:?float "
    "simag1:?float szmag1:?float sgscore1:?float distpsnr1:?float ndethist:int ncovhist:int "
    "jdstarthist:?double jdendhist:?double scorr:?double tooflag:?int objectidps1:?long "
    "objectidps2:?long sgmag2:?float srmag2:?float simag2:?float szmag2:?float sgscore2:?float "
    "distpsnr2:?float objectidps3:?long sgmag3:?float srmag3:?float simag3:?float szmag3:?float "
    "sgscore3:?float distpsnr3:?float nmtchps:int rfid:long jdstartref:double jdendref:double "
    "nframesref:int rbversion:string dsnrms:?float ssnrms:?float dsdiff:?float magzpsci:?float "
    "magzpsciunc:?float magzpscirms:?float nmatches:int clrcoeff:?float clrcounc:?float "
    "zpclrcov:?float zpmed:?float clrmed:?float clrrms:?float neargaia:?float neargaiabright:?float "
    "maggaia:?float maggaiabright:?float exptime:?float drb:?float drbversion:string"
)

_PRV_CANDIDATE = (
    "jd:double fid:int pid:long diffmaglim:?float pdiffimfilename:?string programpi:?string "
    "programid:int candid:~long isdiffpos:~string tblid:?long nid:?int rcid:?int field:?int "
    "xpos:?float ypos:?float ra:~double dec:~double magpsf:~float sigmapsf:~float chipsf:?float "
    "magap:?float sigmagap:?float distnr:?float magnr:?float sigmagnr:?float chinr:?float "
    "sharpnr:?float sky:?float magdiff:?float fwhm:?float classtar:?float mindtoedge:?float "
    "magfromlim:?float seeratio:?float aimage:?float bimage:?float aimagerat:?float bimagerat:?float "
    "elong:?float nneg:?int nbad:?int rb:?float ssdistnr:?float ssmagnr:?float ssnamenr:?string "
    "sumrat:?float magapbig:?float sigmagapbig:?float ranr:~double decnr:~double scorr:?double "
    "magzpsci:?float magzpsciunc:?float magzpscirms:?float clrcoeff:?float clrcounc:?float "
    "rbversion:string"
)

_FP_HIST = (
    "field:?int rcid:?int fid:int pid:long rfid:long sciinpseeing:?float scibckgnd:?float "
    "scisigpix:?float magzpsci:?float magzpsciunc:?float magzpscirms:?float clrcoeff:?float "
    "clrcounc:?float exptime:?float adpctdif1:?float adpctdif2:?float diffmaglim:?float programid:int "
    "jd:double forcediffimflux:?float forcediffimfluxunc:?float procstatus:?string distnr:?float "
    "ranr:double decnr:double magnr:?float sigmagnr:?float chinr:?float sharpnr:?float"
)


def _fields(compact: str) -> list[dict[str, Any]]:
    fields: list[dict[str, Any]] = []
    for item in compact.split():
        name, kind = item.split(":")
        if kind.startswith("?"):
            fields.append({"name": name, "type": ["null", kind[1:]], "default": None})
        elif kind.startswith("~"):
            fields.append({"name": name, "type": ["null", kind[1:]]})
        else:
            fields.append({"name": name, "type": kind})
    return fields


def _record(name: str, compact: str) -> dict[str, Any]:
    return {
        "namespace": "ztf.alert",
        "type": "record",
        "name": name,
        "version": ZTF_SCHEMA_VERSION,
        "fields": _fields(compact),
    }


def ztf_alert_schema() -> dict[str, Any]:
    """The full ZTF 4.02 alert schema, with its named sub-records defined inline."""
    cutout = {
        "namespace": "ztf.alert",
        "type": "record",
        "name": "cutout",
        "version": ZTF_SCHEMA_VERSION,
        "fields": [{"name": "fileName", "type": "string"}, {"name": "stampData", "type": "bytes"}],
    }
    return {
        "namespace": "ztf",
        "type": "record",
        "name": "alert",
        "version": ZTF_SCHEMA_VERSION,
        "fields": [
            {"name": "schemavsn", "type": "string"},
            {"name": "publisher", "type": "string"},
            {"name": "objectId", "type": "string"},
            {"name": "candid", "type": "long"},
            {"name": "candidate", "type": _record("candidate", _CANDIDATE)},
            {
                "name": "prv_candidates",
                "type": ["null", {"type": "array", "items": _record("prv_candidate", _PRV_CANDIDATE)}],
                "default": None,
            },
            {
                "name": "fp_hists",
                "type": ["null", {"type": "array", "items": _record("fp_hist", _FP_HIST)}],
                "default": None,
            },
            {"name": "cutoutScience", "type": ["null", cutout], "default": None},
            {"name": "cutoutTemplate", "type": ["null", "ztf.alert.cutout"], "default": None},
            {"name": "cutoutDifference", "type": ["null", "ztf.alert.cutout"], "default": None},
        ],
    }
