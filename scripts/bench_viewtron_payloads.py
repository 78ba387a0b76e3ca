#!/usr/bin/env python3
"""Payloads of `scripts/bench viewtron`: IPC LPR posts in the fw 5.3.x (LPR-IP4) layout of
docs/protocols/viewtron.md §8, as templates in which every request gets its own device time
and plate id (camgate stores one event per idempotency key, so repeated bodies would only
measure duplicates).

    python3 scripts/bench_viewtron_payloads.py OUTDIR

writes, for each payload NAME (`ipc-lpr-noimg`, `ipc-lpr-50k`):

    OUTDIR/NAME.tmpl   the body with the placeholders {TIME} (16-digit µs currentTime) and
                       {ID} (10-digit vehiceId); the load generator fills them per request
    OUTDIR/NAME.xml    one filled-in body (for checks and the body size)

and prints `NAME BYTES` per payload. The images are valid JPEG files (a 1×1 baseline JPEG
with comment-segment filler, the construction of crates/camgate-sim/src/viewtron/jpeg.rs)
in base64: a 50,000-character overview and a 1,300-character plate crop; `ipc-lpr-noimg`
is the same event with both image elements empty. Content is fixed (seeded), so every run
sends the same bytes apart from the two placeholders.
"""

import base64
import os
import random
import sys

# camgate-sim's TINY_JPEG (crates/camgate-sim/src/generic.rs); strict_segments() below drops
# its one stray byte between segments, as jpeg.rs does.
TINY_JPEG = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300080606070605080707070909080a0c140d0c0b0b0c"
    "1912130f141d1a1f1e1d1a1c1c20242e2720222c231c1c2837292c30313434341f27393d38323c2e333432ffc000"
    "0b080001000101011100ffc40014000100000000000000000000000000000000ffc4001410010000000000000000"
    "000000000000000000ffda0008010100003f002a9fffd9"
)

TIME_PLACEHOLDER = "{TIME}"
ID_PLACEHOLDER = "{ID}"
TIME_DIGITS = 16  # µs since the epoch, as fw 5.3 cameras send it
ID_DIGITS = 10  # vehiceId is a uint32: 1,000,000,000..4,294,967,295

OVERVIEW_B64 = 50_000  # characters of base64 (37,500 JPEG bytes)
PLATE_B64 = 1_300  # characters of base64 (975 JPEG bytes)


def strict_segments(jpeg):
    """The JPEG rewritten segment by segment with the declared lengths (stray bytes dropped)."""
    out = bytearray(jpeg[:2])
    i = 2
    while i + 4 <= len(jpeg):
        if jpeg[i] != 0xFF or jpeg[i + 1] == 0xFF:
            i += 1
            continue
        length = int.from_bytes(jpeg[i + 2 : i + 4], "big")
        end = min(i + 2 + length, len(jpeg))
        out += jpeg[i:end]
        if jpeg[i + 1] == 0xDA:  # start of scan: entropy-coded data and EOI follow
            out += jpeg[end:]
            return bytes(out)
        i = end
    return bytes(jpeg)


BASE_JPEG = strict_segments(TINY_JPEG)


def fake_jpeg(rng, size):
    """A valid JPEG of exactly `size` bytes: BASE_JPEG with random COM-segment filler after SOI."""
    extra = size - len(BASE_JPEG)
    assert extra == 0 or extra >= 4, f"cannot build a JPEG of {size} bytes"
    out = bytearray(BASE_JPEG[:2])
    while extra > 0:
        seg = min(extra, 2 + 65_535)
        if 0 < extra - seg < 4:
            seg -= 4
        out += b"\xff\xfe" + (seg - 2).to_bytes(2, "big")
        out += bytes(rng.randrange(0, 0xFF) for _ in range(seg - 4))  # 00-FE: no stray marker
        extra -= seg
    out += BASE_JPEG[2:]
    assert len(out) == size and out[:2] == b"\xff\xd8" and out[-2:] == b"\xff\xd9"
    return bytes(out)


def jpeg_base64(rng, chars):
    """Base64 of a JPEG, exactly `chars` characters long (a multiple of 4, no padding)."""
    assert chars % 4 == 0
    text = base64.b64encode(fake_jpeg(rng, chars // 4 * 3)).decode("ascii")
    assert len(text) == chars
    return text


def typed(name, ty, value):
    return f'<{name} type="{ty}">{value}</{name}>'


def enum_list(name, values):
    return f"<{name}>" + "".join(f"<enum>{v}</enum>" for v in values) + f"</{name}>"


# The `types` block of an LPR-IP4 post (enumerations; sized so that the bodies are the
# 4,189 / 55,496 bytes of §8).
TYPES = "".join(
    [
        enum_list(
            "openAlarmObj",
            ["MOTION", "SENSOR", "PEA", "AVD", "OSC", "VFD", "VFD_MATCH", "VEHICE", "AOIENTRY",
             "AOILEAVE", "PASSLINECOUNT", "TRAFFIC", "FIRE", "TEMPERATURE", "VSD", "PVD",
             "LOITER", "ASD", "SMD", "CROWDGATHERING"],
        ),
        enum_list("subscribeRelationV1", ["ALARM", "FEATURE_RESULT"]),
        enum_list("perStatus", ["SMART_NONE", "SMART_START", "SMART_STOP", "SMART_PROCEDURE"]),
        enum_list("targetType", ["person", "car", "motor"]),
        enum_list("vehicleDirectType", ["unknown", "approach", "away", "leave"]),
        enum_list("vehileMatchAlarmList", ["whiteList", "blackList", "temporaryList", "strangerList"]),
        enum_list("vsdCarAttrColorType", ["white", "black", "silver", "gray", "red", "blue",
                                          "yellow", "green"]),
    ]
)


def target_image(b64, target_type, w, h):
    # An empty image is an empty element with its end tag, so that the two bodies differ by
    # exactly the base64 text and the length digits.
    data = f'<targetBase64Data type="string">{b64}</targetBase64Data>'
    return (
        "<targetImageData>"
        + typed("dataType", "uint32", 0)
        + typed("targetType", "targetType", target_type)
        + typed("width", "uint32", w)
        + typed("height", "uint32", h)
        + typed("targetBase64Length", "uint32", len(b64))
        + data
        + "</targetImageData>"
    )


def point(name, x, y):
    return f"<{name}>" + typed("x", "uint32", x) + typed("y", "uint32", y) + f"</{name}>"


def lpr_template(overview, plate):
    """One IPC LPR post (fw 5.3 layout, as crates/camgate-sim's ipc_lpr builds it): item 0 is
    the overview, item 1 the plate with its crop."""
    sw, sh, pw, ph = 2688, 1776, 168, 84
    px, py = 4_512, 6_230
    qx, qy = px + pw * 10_000 // sw, py + ph * 10_000 // sh
    plate_number = "KDT4821"
    lines = [
        '<?xml version="1.0" encoding="UTF-8" ?>',
        '<config version="1.7" xmlns="http://www.ipc.com/ver10">',
        "<types>" + TYPES + "</types>",
        typed("smartType", "openAlarmObj", "VEHICE"),
        typed("subscribeOption", "subscribeRelationV1", "FEATURE_RESULT"),
        typed("currentTime", "tint64", TIME_PLACEHOLDER),
        typed("mac", "string", "58:5b:69:3c:a1:7e"),
        typed("sn", "string", "<![CDATA[I3A8C0F41D27]]>"),
        typed("deviceName", "string", "<![CDATA[Gate LPR Lane 1]]>"),
        typed("channelId", "uint32", 1),
        typed("plateCount", "uint32", 1),
        '<listInfo type="list" count="2">',
        "<item>"
        + typed("image", "uint32", 0)
        + typed("vehiceId", "uint32", 0)
        + '<plateNumber type="string"></plateNumber>'
        + typed("plateCharCount", "uint32", 0)
        + typed("PlateWidth", "uint32", 0)
        + typed("PlateHeight", "uint32", 0)
        + typed("SourceImageWidth", "uint32", sw)
        + typed("SourceImageHeight", "uint32", sh)
        + '<PlateConfidence type="uint32" count="0"/>'
        + target_image(overview, "", sw, sh)
        + "</item>",
        "<item>"
        + typed("image", "uint32", 1)
        + typed("vehiceId", "uint32", ID_PLACEHOLDER)
        + typed("plateNumber", "string", f"<![CDATA[{plate_number}]]>")
        + typed("plateCharCount", "uint32", len(plate_number))
        + typed("vehicleDirect", "vehicleDirectType", "approach")
        + typed("vehicleListType", "vehileMatchAlarmList", "whiteList")
        + typed("PlateWidth", "uint32", pw)
        + typed("PlateHeight", "uint32", ph)
        + typed("SourceImageWidth", "uint32", sw)
        + typed("SourceImageHeight", "uint32", sh)
        + point("leftTop", px, py)
        + point("rightTop", qx, py)
        + point("leftBottom", px, qy)
        + point("rightBottom", qx, qy)
        + '<PlateConfidence type="uint32" count="9412"/>'
        + '<plateColor type="uint32" count="3"/><plateColorRate type="uint32" count="0"/>'
        + '<plateStyle type="uint32" count="1"/><vehiceColor type="uint32" count="0"/>'
        + '<plateAngleH type="uint32" count="0"/><plateAngleV type="uint32" count="0"/>'
        + '<province type="string"></province>'
        + "<carAttr>"
        + typed("color", "vsdCarAttrColorType", "silver")
        + typed("type", "vsdCarAttrTypeType", "SUV")
        + typed("brand", "vsdCarAttrBrandType", "Toyota")
        + typed("model", "vsdCarAttrModelType", "Toyota_Corolla")
        + "</carAttr>"
        + "<carRect>"
        + typed("x", "uint32", 1_132)
        + typed("y", "uint32", 840)
        + typed("width", "uint32", 640)
        + typed("height", "uint32", 470)
        + "</carRect>"
        + target_image(plate, "car", pw, ph)
        + "</item>",
        "</listInfo>",
        "</config>",
        "",
    ]
    return "\n".join(lines)


def fill(template, time_us, target_id):
    """A body from a template (what the Lua script does per request)."""
    time_text, id_text = f"{time_us:0{TIME_DIGITS}d}", f"{target_id:0{ID_DIGITS}d}"
    assert len(time_text) == TIME_DIGITS and len(id_text) == ID_DIGITS
    return template.replace(TIME_PLACEHOLDER, time_text).replace(ID_PLACEHOLDER, id_text)


def payloads():
    """{name: template}, deterministic."""
    rng = random.Random(20261121)
    overview = jpeg_base64(rng, OVERVIEW_B64)
    plate = jpeg_base64(rng, PLATE_B64)
    return {
        "ipc-lpr-noimg": lpr_template("", ""),
        "ipc-lpr-50k": lpr_template(overview, plate),
    }


def main():
    if len(sys.argv) != 2:
        sys.exit(f"usage: {sys.argv[0]} OUTDIR")
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    for name, template in payloads().items():
        assert template.count(TIME_PLACEHOLDER) == 1 and template.count(ID_PLACEHOLDER) == 1
        body = fill(template, 1_763_740_800_000_000, 1_000_000_001)
        with open(os.path.join(out, name + ".tmpl"), "w", encoding="ascii", newline="") as f:
            f.write(template)
        with open(os.path.join(out, name + ".xml"), "w", encoding="ascii", newline="") as f:
            f.write(body)
        print(name, len(body.encode("ascii")))


if __name__ == "__main__":
    main()
