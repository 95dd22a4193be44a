//! Static assets: the vendored Bootstrap Italia build and Cessio's own CSS and script,
//! compiled into the binary so that running Cessio needs no npm and no files beside it.
//!
//! URLs carry a digest of the whole set (`/static/<digest>/…`): a new build gets new URLs,
//! so browsers may keep every asset for a year without asking again.

use std::sync::LazyLock;

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

macro_rules! assets {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_bytes!(concat!(env!("CARGO_MANIFEST_DIR"), "/assets/", $path)) as &[u8])),*]
    };
}

const FILES: &[(&str, &[u8])] = assets![
    "bootstrap-italia/css/bootstrap-italia.min.css",
    "bootstrap-italia/js/bootstrap-italia.bundle.min.js",
    "bootstrap-italia/svg/sprites.svg",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-300.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-300italic.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-regular.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-italic.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-600.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-600italic.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-700.woff2",
    "bootstrap-italia/fonts/Titillium_Web/titillium-web-v10-latin-ext_latin-700italic.woff2",
    "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-regular.woff2",
    "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-italic.woff2",
    "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-700.woff2",
    "bootstrap-italia/fonts/Roboto_Mono/roboto-mono-v13-latin-ext_latin-700italic.woff2",
    "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-regular.woff2",
    "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-italic.woff2",
    "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-700.woff2",
    "bootstrap-italia/fonts/Lora/lora-v20-latin-ext_latin-700italic.woff2",
    "bootstrap-italia/LICENSE",
    "cessio/fonts.css",
    "cessio/cessio.css",
    "cessio/cessio.js",
];

/// The first 12 hex digits of the SHA-256 of every asset, in order.
static DIGEST: LazyLock<String> = LazyLock::new(|| {
    let mut h = Sha256::new();
    for (path, bytes) in FILES {
        h.update(path.as_bytes());
        h.update(bytes);
    }
    let full = h.finalize();
    full.iter().take(6).map(|b| format!("{b:02x}")).collect()
});

/// The URL of an asset, e.g. `url("cessio/cessio.css")`.
pub fn url(path: &str) -> String {
    format!("/static/{}/{path}", DIGEST.as_str())
}

fn content_type(path: &str) -> &'static str {
    match path.rsplit_once('.').map(|(_, ext)| ext) {
        Some("css") => "text/css; charset=utf-8",
        Some("js") => "text/javascript; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("woff2") => "font/woff2",
        _ => "text/plain; charset=utf-8",
    }
}

pub async fn serve(Path((digest, path)): Path<(String, String)>) -> Response {
    let Some((_, bytes)) = FILES.iter().find(|(p, _)| *p == path) else {
        return (StatusCode::NOT_FOUND, "Risorsa inesistente").into_response();
    };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(content_type(&path)),
    );
    // An old digest still gets the file (a page cached before an upgrade), but only the
    // current one may be kept for good.
    let cache = if digest == DIGEST.as_str() {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_has_a_known_type_and_is_not_empty() {
        for (path, bytes) in FILES {
            assert!(!bytes.is_empty(), "{path}");
            if !path.ends_with("LICENSE") {
                assert_ne!(content_type(path), "text/plain; charset=utf-8", "{path}");
            }
        }
    }

    #[test]
    fn urls_carry_the_digest_of_the_set() {
        assert_eq!(DIGEST.len(), 12);
        assert!(url("cessio/cessio.css").starts_with("/static/"));
        assert!(url("cessio/cessio.css").ends_with("/cessio/cessio.css"));
    }
}
