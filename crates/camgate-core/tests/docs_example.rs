//! The example configuration in docs/ parses, and docs/config.md shows the same file.

use camgate_core::config::Config;

fn docs(file: &str) -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs").join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_example_configuration_is_valid_and_documented_verbatim() {
    let example = docs("camgate.example.toml");
    // The example's secrets are ${VAR} references (${FRONT_DOOR_PASSWORD}, ${ACC_PASSWORD},
    // ...): give every one that is not commented out a value.
    let mut text = example.clone();
    for line in example.lines().filter(|l| !l.trim_start().starts_with('#')) {
        for reference in line.split("${").skip(1).filter_map(|r| r.split('}').next()) {
            text = text.replace(&format!("${{{reference}}}"), "example");
        }
    }
    let config = Config::from_toml(&text, "camgate.example.toml").unwrap_or_else(|e| panic!("{e}"));
    assert!(config.camera.len() >= 2, "the example shows the camera vendors");
    assert_eq!(config.avigilon.len(), 1, "the example shows an Avigilon site");
    assert_eq!(config.avigilon[0].history.as_ref().map(Vec::len), Some(3), "with the legacy history filter");
    let md = docs("config.md");
    let block = md
        .split("```toml\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .find(|b| b.starts_with("# camgate.toml: an example configuration"))
        .expect("the complete example in config.md");
    assert_eq!(block.trim_end(), example.trim_end(), "docs/config.md's example differs from docs/camgate.example.toml");
}
