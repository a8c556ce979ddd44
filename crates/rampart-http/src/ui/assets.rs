//! The stylesheet and the script, compiled into the binary and served under content-hashed names
//! (`/ui/assets/ui.<hash>.css`), so that they can be cached for a year: a new build with other
//! content has another name. Both are same-origin, which is all the page CSP allows.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};
use rampart_core::opaque_token::TokenHash;

use crate::ApiError;

const CSS: &str = include_str!("static/ui.css");
const JS: &str = include_str!("static/ui.js");

/// 16 hex digits (64 bits) of SHA-256: plenty to tell two builds apart, short enough to read.
const HASH_LEN: usize = 16;

struct Asset {
    file_name: String,
    body: &'static str,
    content_type: &'static str,
}

fn assets() -> &'static [Asset; 2] {
    static ASSETS: OnceLock<[Asset; 2]> = OnceLock::new();
    ASSETS.get_or_init(|| {
        let named = |stem: &str, ext: &str, body: &'static str, content_type| {
            let hash = TokenHash::of(body);
            let short = hash.as_str().get(..HASH_LEN).unwrap_or(hash.as_str());
            Asset { file_name: format!("{stem}.{short}.{ext}"), body, content_type }
        };
        [named("ui", "css", CSS, "text/css; charset=utf-8"), named("ui", "js", JS, "text/javascript; charset=utf-8")]
    })
}

/// `/ui/assets/ui.<hash>.css`, for the layout's `<link>`.
pub fn stylesheet_href() -> String {
    let [css, _] = assets();
    format!("/ui/assets/{}", css.file_name)
}

/// `/ui/assets/ui.<hash>.js`, for the layout's `<script type="module">`.
pub fn script_src() -> String {
    let [_, js] = assets();
    format!("/ui/assets/{}", js.file_name)
}

/// `GET /ui/assets/{name}`: only the exact current names; anything else (an old hash, a path
/// that tries to climb out) is 404. Nothing is read from disk.
pub async fn serve(Path(name): Path<String>) -> Response {
    match assets().iter().find(|a| a.file_name == name) {
        Some(asset) => (
            [
                (header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type)),
                // The name changes with the content, so the response never does.
                (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable")),
            ],
            asset.body,
        )
            .into_response(),
        None => ApiError::NotFound.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash() {
        let css = stylesheet_href();
        let hash = TokenHash::of(CSS);
        assert!(css.starts_with("/ui/assets/ui.") && css.ends_with(".css"), "{css}");
        assert!(css.contains(&hash.as_str()[..HASH_LEN]), "{css}");
        assert!(script_src().ends_with(".js"));
        assert_ne!(css.trim_end_matches(".css"), script_src().trim_end_matches(".js"));
    }
}
