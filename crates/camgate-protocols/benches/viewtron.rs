//! Viewtron parser speed, per body, with no HTTP around it.
//!
//! * `viewtron/ipc_lpr_55k`: an IPC LPR-IP4 (fw 5.3.x) post of about 55 KB, a 50,000-char
//!   base64 overview and a 1,300-char plate crop, like the reference's `ipc-lpr-50k` payload
//!   (docs/protocols/viewtron.md §8: the reference parser needs ~1.1 ms for it, images not
//!   decoded). Both images are decoded here.
//! * `viewtron/ipc_lpr_noimg`: the same post with empty image elements.
//! * `viewtron/nvr_lpr_sample`: the vendor's NVR `vehicle` sample (placeholder images).
//! * `viewtron/nvr_keepalive`: the NVR keepalive sample.

use std::hint::black_box;

use base64::Engine as _;
use camgate_protocols::viewtron::{ParseOptions, Post, parse};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const NVR_LPR: &[u8] = include_bytes!("../../../../shared/samples/viewtron/nvr-v2/vehicle-lpr.xml");
const NVR_KEEPALIVE: &[u8] = include_bytes!("../../../../shared/samples/viewtron/nvr-v2/keepalive.xml");

/// Deterministic bytes that look like JPEG data (SOI, filler, EOI).
fn jpeg_like(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed.max(1);
    let mut v: Vec<u8> = (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect();
    v[..2].copy_from_slice(&[0xFF, 0xD8]);
    let end = v.len() - 2;
    v[end..].copy_from_slice(&[0xFF, 0xD9]);
    v
}

/// An LPR-IP4 fw 5.3.x post (config 1.7) with the given base64 images.
fn lpr_body(overview: &str, plate: &str) -> Vec<u8> {
    let enums: String = [
        "MOTION",
        "SENSOR",
        "PEA",
        "AVD",
        "OSC",
        "VFD",
        "VFD_MATCH",
        "VEHICE",
        "AOIENTRY",
        "AOILEAVE",
        "PASSLINECOUNT",
        "TRAFFIC",
        "FIRE",
        "TEMPERATURE",
        "VSD",
        "PVD",
        "LOITER",
        "ASD",
        "SMD",
        "CROWDGATHERING",
    ]
    .iter()
    .map(|e| format!("<enum>{e}</enum>"))
    .collect();
    let item = |image: u32, id: u32, number: &str, extra: &str, corners: [u32; 4], w: u32, h: u32, data: &str| {
        let [x1, y1, x2, y2] = corners;
        format!(
            "<item><image type=\"uint32\">{image}</image><vehiceId type=\"uint32\">{id}</vehiceId>\
             <plateNumber type=\"string\"><![CDATA[{number}]]></plateNumber><plateCharCount type=\"uint32\">{}</plateCharCount>{extra}\
             <PlateWidth type=\"uint32\">{w}</PlateWidth><PlateHeight type=\"uint32\">{h}</PlateHeight>\
             <SourceImageWidth type=\"uint32\">2688</SourceImageWidth><SourceImageHeight type=\"uint32\">1776</SourceImageHeight>\
             <leftTop><x type=\"uint32\">{x1}</x><y type=\"uint32\">{y1}</y></leftTop><rightTop><x type=\"uint32\">{x2}</x><y type=\"uint32\">{y1}</y></rightTop>\
             <leftBottom><x type=\"uint32\">{x1}</x><y type=\"uint32\">{y2}</y></leftBottom><rightBottom><x type=\"uint32\">{x2}</x><y type=\"uint32\">{y2}</y></rightBottom>\
             <PlateConfidence type=\"uint32\" count=\"{}\"/><plateColor type=\"uint32\" count=\"3\"/><plateColorRate type=\"uint32\" count=\"0\"/>\
             <plateStyle type=\"uint32\" count=\"1\"/><vehiceColor type=\"uint32\" count=\"0\"/><plateAngleH type=\"uint32\" count=\"0\"/>\
             <plateAngleV type=\"uint32\" count=\"0\"/>\
             <targetImageData><dataType type=\"uint32\">0</dataType><targetType type=\"targetType\">car</targetType>\
             <width type=\"uint32\">{w}</width><height type=\"uint32\">{h}</height>\
             <targetBase64Length type=\"uint32\">{}</targetBase64Length><targetBase64Data type=\"string\">{data}</targetBase64Data>\
             </targetImageData></item>\n",
            number.len(),
            if number.is_empty() { 0 } else { 9900 },
            data.len()
        )
    };
    let plate_extra = "<vehicleDirect type=\"vehicleDirectType\">approach</vehicleDirect>\
        <vehicleListType type=\"vehileMatchAlarmList\">whiteList</vehicleListType><province type=\"string\"></province>\
        <carAttr><color type=\"vsdCarAttrColorType\">white</color><type type=\"vsdCarAttrTypeType\">saloon car</type>\
        <brand type=\"vsdCarAttrBrandType\">Toyota</brand><model type=\"vsdCarAttrModelType\">Toyota_Corolla</model></carAttr>\
        <carRect><x type=\"uint32\">1242</x><y type=\"uint32\"/><width type=\"uint32\">586</width><height type=\"uint32\">446</height></carRect>";
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\" ?>\n<config version=\"1.7\" xmlns=\"http://www.ipc.com/ver10\">\n\
         <types><openAlarmObj>{enums}</openAlarmObj><subscribeRelationV1><enum>ALARM</enum><enum>FEATURE_RESULT</enum></subscribeRelationV1>\
         <perStatus><enum>SMART_NONE</enum><enum>SMART_START</enum><enum>SMART_STOP</enum><enum>SMART_PROCEDURE</enum></perStatus>\
         <targetType><enum>person</enum><enum>car</enum><enum>motor</enum></targetType></types>\n\
         <smartType type=\"openAlarmObj\">VEHICE</smartType>\n<subscribeOption type=\"subscribeRelationV1\">FEATURE_RESULT</subscribeOption>\n\
         <currentTime type=\"tint64\">1791471201542438</currentTime>\n<mac type=\"string\"><![CDATA[58:5B:69:AA:BB:CC]]></mac>\n\
         <sn type=\"string\"><![CDATA[LPRSN0001]]></sn>\n<deviceName type=\"string\"><![CDATA[Gate LPR]]></deviceName>\n\
         <channelId type=\"uint32\">1</channelId>\n<plateCount type=\"uint32\">1</plateCount>\n<listInfo type=\"list\" count=\"2\">\n{}{}</listInfo>\n</config>\n",
        item(0, 0, "", "", [0, 0, 0, 0], 0, 0, overview),
        item(1, 10, "ABC1234", plate_extra, [7559, 2072, 8214, 2635], 176, 100, plate),
    )
    .into_bytes()
}

fn bench(c: &mut Criterion) {
    let b64 = |b: &[u8]| base64::engine::general_purpose::STANDARD.encode(b);
    let overview = b64(&jpeg_like(37_500, 7));
    let plate = b64(&jpeg_like(975, 9));
    assert_eq!((overview.len(), plate.len()), (50_000, 1_300));
    let full = lpr_body(&overview, &plate);
    let empty = lpr_body("", "");
    let opts = ParseOptions::default();
    // The bodies must parse as intended, or the numbers mean nothing.
    let Ok(Post::Events(v)) = parse(&full, &opts) else { panic!("55 KB body did not parse") };
    assert_eq!(v[0].images.len(), 2, "{:?}", v[0].image_errors);
    assert_eq!(v[0].plate.as_ref().map(|p| p.number.as_str()), Some("ABC1234"));
    eprintln!("ipc_lpr_55k body: {} bytes; ipc_lpr_noimg body: {} bytes", full.len(), empty.len());

    let mut g = c.benchmark_group("viewtron");
    for (name, body) in [
        ("ipc_lpr_55k", full.as_slice()),
        ("ipc_lpr_noimg", empty.as_slice()),
        ("nvr_lpr_sample", NVR_LPR),
        ("nvr_keepalive", NVR_KEEPALIVE),
    ] {
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_function(name, |b| b.iter(|| parse(black_box(body), &opts)));
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
