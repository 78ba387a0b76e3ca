#!/usr/bin/env python3
"""Run the reference Viewtron parser (PyPI `viewtron` 1.4.1) over post bodies, as an oracle.

    .venv/bin/python scripts/viewtron_oracle.py FILE_OR_DIR...

For every file (directories are walked recursively, `*.xml` files in sorted order) this
prints one JSON object per line with what `viewtron.events._classify_post(text)` returns:
the class name and reason, and every public field and getter the reference exposes on that
class (docs/protocols/viewtron.md of the shared folder, §7.6 and §7.7). Fields that do not
exist on the class are left out of the object, so "absent" and "None" stay distinct.

Times: the reference builds naive local datetimes, so the process runs with TZ=UTC (set
before anything is imported) and `time_stamp_formatted` is printed as an ISO-8601 string
that is a UTC wall-clock time. Images: only lengths and whether the reference's lenient
base64 decode worked are printed, never the data.

The oracle never crashes on a sample: an exception from the reference is reported as
`"error"` in that file's object (and the run continues); any other field that raises is
reported as `{"raised": "..."}`. The exit status is 2 when a path cannot be read.
"""

import os
import time

os.environ["TZ"] = "UTC"
time.tzset()

import datetime  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
import traceback  # noqa: E402

import viewtron  # noqa: E402
import viewtron.events as events  # noqa: E402

MISSING = object()

# Plain attributes, in the order of §7.6/§7.7. Each is printed when the object has it.
ATTRIBUTES = [
    "category",
    "config_version",
    "format",
    "alarm_type",
    "alarm_description",
    "ip_cam",
    # IPC LPR and NVR VehicleLPR
    "plate_number",
    "vehicleListType",
    "plate_list",
    "direction",
    "confidence",
    "vehicle_color",
    "vehicle_brand",
    "vehicle_type",
    "vehicle_model",
    # NVR VehicleLPR
    "plate_color",
    "car_type",
    "car_color",
    "car_brand",
    "car_model",
    "group_name",
    "car_owner",
    # NVR FaceDetectionV2
    "face_age",
    "face_sex",
    "face_glasses",
    "face_mask",
    # NVR common
    "device_ip",
    "device_mac",
    "channel_id",
    # images (flags as set by the class)
    "has_source_image",
    "has_target_image",
    # Traject
    "device_name",
    "mac",
    "source",
    "targets",
]

# Zero-argument getters, printed under `get_<name>` when the class has them. The image
# getters are handled separately (lengths only). get_time_stamp() is left out: it is the
# current time, not the event's (§6).
GETTERS = [
    "get_alarm_type",
    "get_alarm_description",
    "get_ip_cam",
    "get_time_stamp_formatted",
    "get_plate_number",
    "get_plate_group",
    "get_alarm_types",
    "get_target_types",
    "get_plate_color",
    "get_car_type",
    "get_car_color",
    "get_car_brand",
    "get_car_model",
    "get_car_owner",
    "get_face_age",
    "get_face_sex",
    "get_face_glasses",
    "get_face_mask",
    "get_channel_id",
    "get_ip_address",
    "source_image_exists",
    "target_image_exists",
    "images_exist",
]


def jsonable(value):
    """A JSON-friendly copy of a reference value (datetimes as ISO strings)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        return {"bytes_len": len(value)}
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return repr(value)


def call(obj, name):
    """`obj.name()` as JSON, MISSING when there is no such callable, or the exception."""
    fn = getattr(obj, name, None)
    if not callable(fn):
        return MISSING
    try:
        return jsonable(fn())
    except Exception as exc:  # the oracle reports, it never crashes
        return {"raised": f"{type(exc).__name__}: {exc}"}


def image_fields(event, which):
    """Length of get_<which>_image() text and whether get_<which>_image_bytes() is None."""
    out = {}
    text = call(event, f"get_{which}_image")
    if text is not MISSING:
        out[f"{which}_image_len"] = len(text) if isinstance(text, str) else None
    fn = getattr(event, f"get_{which}_image_bytes", None)
    if callable(fn):
        try:
            data = fn()
            out[f"{which}_image_bytes_none"] = data is None
            out[f"{which}_image_bytes_len"] = None if data is None else len(data)
        except Exception as exc:
            out[f"{which}_image_bytes_none"] = {"raised": f"{type(exc).__name__}: {exc}"}
    return out


def describe(path):
    out = {"path": path}
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        out["error"] = f"cannot read: {exc}"
        return out, False
    # What the reference server does with a body (§7.3 step 4).
    text = raw.decode("utf-8", errors="replace")
    try:
        event, reason = events._classify_post(text)
    except Exception as exc:
        # The server would report this as on_unparsed(..., "parse-error").
        out.update({"class": None, "reason": "parse-error", "category": None})
        out["error"] = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return out, True

    out["class"] = None if event is None else type(event).__name__
    out["reason"] = reason
    out["category"] = getattr(event, "category", None) if event is not None else None
    if event is None:
        return out, True

    for name in ATTRIBUTES:
        value = getattr(event, name, MISSING)
        if value is not MISSING:
            out[name] = jsonable(value)
    tsf = getattr(event, "time_stamp_formatted", MISSING)
    if tsf is not MISSING:
        is_datetime = isinstance(tsf, datetime.datetime)
        # ISO string either way; Traject holds str(datetime) ("2024-11-19 19:40:34.584193").
        if isinstance(tsf, str):
            try:
                tsf = datetime.datetime.fromisoformat(tsf).isoformat()
            except ValueError:
                pass
        out["time_stamp_formatted"] = jsonable(tsf)
        out["time_stamp_formatted_is_datetime"] = is_datetime
    for name in GETTERS:
        value = call(event, name)
        if value is not MISSING:
            out[name] = value
    out.update(image_fields(event, "source"))
    out.update(image_fields(event, "target"))
    return out, True


def expand(args):
    paths = []
    for arg in args:
        if os.path.isdir(arg):
            for root, dirs, files in os.walk(arg):
                dirs.sort()
                paths.extend(os.path.join(root, f) for f in sorted(files) if f.endswith(".xml"))
        else:
            paths.append(arg)
    return paths


def main(argv):
    if len(argv) < 2:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    ok = True
    for path in expand(argv[1:]):
        obj, readable = describe(path)
        obj["viewtron_version"] = getattr(viewtron, "__version__", None)
        ok &= readable
        print(json.dumps(obj, sort_keys=False), flush=True)
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
