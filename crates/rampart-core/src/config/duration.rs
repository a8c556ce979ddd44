//! Durations in the config are human strings: `"30m"`, `"12h"`, `"30d"`, `"500ms"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let raw = String::deserialize(d)?;
    humantime::parse_duration(raw.trim())
        .map_err(|e| serde::de::Error::custom(format!("`{raw}` is not a duration like \"30m\" ({e})")))
}
