//! docs/examples/stadium.toml (the legacy Avigilon monitor's three zones) parses, and its
//! matchers count exactly what the legacy substrings counted.

use camgate_core::config::matcher::{EventView, any_matches};
use camgate_core::config::{Config, Reset};
use camgate_core::{Event, Kind, State, Vendor};

fn stadium() -> Config {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/examples/stadium.toml");
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    Config::from_toml(&text, "stadium.toml").unwrap_or_else(|e| panic!("{e}"))
}

fn stop(name: &str) -> Event {
    let mut e = Event::new("k", "acc", Vendor::Avigilon, Kind::Counting);
    e.rule = Some(name.into());
    e.code = Some("DEVICE_ANALYTICS_STOP".into());
    e.state = Some(State::Stop);
    e
}

#[test]
fn the_three_legacy_zones() {
    let c = stadium();
    assert_eq!(c.site.timezone, "America/Bogota");
    assert!(c.occupancy.legacy_tables);
    let zones: Vec<(&str, Option<&str>)> =
        c.zone.iter().map(|z| (z.name.as_str(), z.legacy_table.as_deref())).collect();
    assert_eq!(
        zones,
        [
            ("Parqueadero Norte", Some("Aforo_parqueadero")),
            ("Campinsito", Some("Aforo_parqueadero_campinsito")),
            ("Zona Sur", Some("Aforo_parqueadero_SUR")),
        ]
    );
    assert!(c.zone.iter().all(|z| z.reset == Reset::Schedule && z.clamp_at_zero && z.capacity.is_none()));
}

#[test]
fn the_legacy_substrings_decide() {
    let c = stadium();
    // (name, zone index, is an entry)
    for (name, zone, entry) in [
        ("AFORO ENTRADA PARQUEADERO NORTE", 0, true),
        ("Cam 12 aforo salida  parqueadero norte", 0, false),
        ("ENTRADA VEHICULAR CAMPINSITO 2", 1, true),
        ("SALIDA VEHICULAR CAMPINSITO", 1, false),
        ("INGRESO PARQUEADERO SUR", 2, true),
        (" salida parqueadero sur ", 2, false),
    ] {
        let e = stop(name);
        let v = EventView::new(&e);
        for (i, z) in c.zone.iter().enumerate() {
            let expect = i == zone;
            assert_eq!(any_matches(&z.enter, &v), expect && entry, "{name} / {} enter", z.name);
            assert_eq!(any_matches(&z.exit, &v), expect && !entry, "{name} / {} exit", z.name);
        }
        // The START of the same crossing does not count.
        let mut start = stop(name);
        start.code = Some("DEVICE_ANALYTICS_START".into());
        let v = EventView::new(&start);
        assert!(c.zone.iter().all(|z| !any_matches(&z.enter, &v) && !any_matches(&z.exit, &v)), "{name}");
    }
    let analysis = &c.occupancy.legacy_events;
    for (name, kept) in [
        ("PUERTA 4", true),
        ("ingreso puerta norte", true),
        ("AFORO ENTRADA SENCIA 1", true),
        ("INGRESO PERSONAS ENTRADA MARATON", true),
        ("INGRESO PERSONAS ENTRADA MARATON 2", false),
        ("AFORO ENTRADA PARQUEADERO NORTE", false),
    ] {
        assert_eq!(any_matches(analysis, &EventView::new(&stop(name))), kept, "{name}");
    }
}
